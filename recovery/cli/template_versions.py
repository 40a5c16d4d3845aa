"""``recovery templates export DIR`` / ``import DIR``: live versions to files and back, for teams using git."""

from __future__ import annotations

import asyncio
import getpass
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from recovery.errors import RecoveryError
from recovery.render.versions import TemplateRejected, current_source, editable_paths, save_many_checked
from recovery.settings import Settings, load_settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head

console = Console()
errors = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="YAML configuration file (default: config/recovery.yaml).")


async def export_live(settings: Settings, target: Path) -> int:
    """Write the live source of every template (saved version, else the file) under ``target``."""
    engine = create_engine(settings.database.url)
    try:
        await upgrade_to_head(engine)
        paths = editable_paths(settings.templates_dir)
        for path in paths:
            source = (await current_source(engine, settings.templates_dir, path))[0]
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_text(source, encoding="utf-8")
        return len(paths)
    finally:
        await engine.dispose()


async def import_changed(settings: Settings, source_dir: Path) -> dict[str, int]:
    """Save every file of ``source_dir`` whose text differs from the live one, checked as one set."""
    engine = create_engine(settings.database.url)
    try:
        await upgrade_to_head(engine)
        changes = {}
        for path in editable_paths(settings.templates_dir):
            candidate = source_dir / path
            if candidate.is_file():
                text = candidate.read_text(encoding="utf-8")
                if text != (await current_source(engine, settings.templates_dir, path))[0]:
                    changes[path] = text
        if not changes:
            return {}
        now = datetime.now(UTC)
        return await save_many_checked(
            engine, settings.templates_dir, changes, created_by=f"cli:{getpass.getuser()}", now=now
        )
    finally:
        await engine.dispose()


def export_command(
    directory: Path = typer.Argument(..., help="Folder to write the live templates into."),
    config: Path | None = ConfigOption,
) -> None:
    """Write the live version of every template to DIRECTORY (same layout as templates/)."""
    try:
        count = asyncio.run(export_live(load_settings(config), directory))
    except RecoveryError as exc:
        errors.print(Text(f"error: {exc}", style="red"))
        raise typer.Exit(1) from exc
    console.print(f"{count} templates written to {directory}")


def import_command(
    directory: Path = typer.Argument(..., help="Folder laid out like templates/ (e.g. an export)."),
    config: Path | None = ConfigOption,
) -> None:
    """Save the files of DIRECTORY that differ from the live ones as new versions, if the full check passes."""
    try:
        saved = asyncio.run(import_changed(load_settings(config), directory))
    except TemplateRejected as exc:
        for error in exc.errors:
            errors.print(Text(f"error: {error.message}", style="red"))
        errors.print("nothing was saved")
        raise typer.Exit(1) from exc
    except RecoveryError as exc:
        errors.print(Text(f"error: {exc}", style="red"))
        raise typer.Exit(1) from exc
    for path, version in saved.items():
        console.print(f"{path}: version {version}")
    console.print(f"{len(saved)} templates saved" if saved else "nothing changed")
