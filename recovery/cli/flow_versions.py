"""``recovery flows export DIR`` / ``import DIR``: live flow versions to YAML files and back (one per flow)."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from recovery.clock import SystemClock
from recovery.errors import RecoveryError
from recovery.rules.flow_desk import FlowDesk, FlowRejected, UnknownFlow
from recovery.settings import Settings, load_settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head

console = Console()
errors = Console(stderr=True)
flows_app = typer.Typer(no_args_is_help=True)

ConfigOption = typer.Option(None, "--config", "-c", help="YAML configuration file (default: config/recovery.yaml).")


async def live_sources(settings: Settings) -> dict[str, str]:
    """The live source of every flow (saved version, else the file's), by name."""
    engine = create_engine(settings.database.url)
    try:
        await upgrade_to_head(engine)
        desk = FlowDesk(engine=engine, settings=settings, clock=SystemClock())
        return {row["name"]: (await desk.read(row["name"]))["source"] for row in await desk.listing()}
    finally:
        await engine.dispose()


def export_live(settings: Settings, target: Path) -> int:
    """Write the live source of every flow as ``target/<name>.yaml``."""
    sources = asyncio.run(live_sources(settings))
    target.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        (target / f"{name}.yaml").write_text(source, encoding="utf-8")
    return len(sources)


def import_changed(settings: Settings, source_dir: Path) -> dict[str, int]:
    """Save every ``<name>.yaml`` of ``source_dir`` that differs from the live flow; all checked before any save."""
    files = {path.stem: path.read_text(encoding="utf-8") for path in sorted(source_dir.glob("*.yaml"))}
    return asyncio.run(save_changed(settings, files))


async def save_changed(settings: Settings, files: dict[str, str]) -> dict[str, int]:
    """Save the flows of ``files`` whose text differs from the live one, if every one passes the check."""
    engine = create_engine(settings.database.url)
    try:
        await upgrade_to_head(engine)
        desk = FlowDesk(engine=engine, settings=settings, clock=SystemClock())
        changes: dict[str, str] = {}
        for name, text in files.items():
            try:
                live = (await desk.read(name))["source"]
            except UnknownFlow:
                live = None
            if text != live:
                await desk.check(name, text)  # FlowRejected before anything is saved
                changes[name] = text
        who = f"cli:{getpass.getuser()}"
        return {name: await desk.save(name, text, who, "import") for name, text in changes.items()}
    finally:
        await engine.dispose()


@flows_app.command("export")
def export_command(
    directory: Path = typer.Argument(..., help="Folder to write the live flows into (one <name>.yaml each)."),
    config: Path | None = ConfigOption,
) -> None:
    """Write the live version of every flow to DIRECTORY."""
    try:
        count = export_live(load_settings(config), directory)
    except RecoveryError as exc:
        errors.print(Text(f"error: {exc}", style="red"))
        raise typer.Exit(1) from exc
    console.print(f"{count} flows written to {directory}")


@flows_app.command("import")
def import_command(
    directory: Path = typer.Argument(..., help="Folder of <name>.yaml flows (e.g. an export)."),
    config: Path | None = ConfigOption,
) -> None:
    """Save the flows of DIRECTORY that differ from the live ones as new versions, if the flow check passes."""
    try:
        saved = import_changed(load_settings(config), directory)
    except FlowRejected as exc:
        for error in exc.errors:
            errors.print(Text(f"error: line {error.line}: {error.message}", style="red"))
        errors.print("nothing was saved")
        raise typer.Exit(1) from exc
    except RecoveryError as exc:
        errors.print(Text(f"error: {exc}", style="red"))
        raise typer.Exit(1) from exc
    for name, version in saved.items():
        console.print(f"{name}: version {version}")
    console.print(f"{len(saved)} flows saved" if saved else "nothing changed")
