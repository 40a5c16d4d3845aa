"""Export the live versions of a set of sources (flows, templates) to a folder and import a folder back.

One implementation for every versioned set: a ``SourceSet`` says where each key's file lies, how to read and
save (checked as one set, all saved or none) and how to explain a refusal; this module does the rest.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.errors import RecoveryError
from recovery.settings import Settings, load_settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head

console = Console()
errors = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="YAML configuration file (default: config/recovery.yaml).")


class SourceSet(Protocol):
    """Versioned sources over one database, as files: keys, their paths in a folder, live text, a checked save."""

    def path_in(self, folder: Path, key: str) -> Path:
        """Where ``key``'s source lies in an exported folder."""
        ...

    def keys_in(self, folder: Path) -> list[str]:
        """The keys an import folder holds a file for."""
        ...

    async def live(self) -> dict[str, str]:
        """The live source of every key (saved version, else the shipped file)."""
        ...

    async def save_checked(self, changes: dict[str, str], created_by: str) -> dict[str, int]:
        """Save every change if the set passes the check (a ``RecoveryError`` and nothing saved otherwise)."""
        ...


@dataclass(frozen=True, kw_only=True)
class SourceKind:
    """What the commands need of one kind: its name, how to open its set, how to explain a refused check."""

    noun: str  # plural, for the summary lines ("flows", "templates")
    open: Callable[[AsyncEngine, Settings], SourceSet]
    refusal: Callable[[RecoveryError], list[str] | None]  # the check's lines, or None when not a refusal


@asynccontextmanager
async def _migrated(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database.url)
    try:
        await upgrade_to_head(engine)
        yield engine
    finally:
        await engine.dispose()


async def export_live(kind: SourceKind, settings: Settings, target: Path) -> int:
    """Write the live source of every key under ``target``; how many were written."""
    async with _migrated(settings) as engine:
        sources = kind.open(engine, settings)
        live = await sources.live()
    _write_folder(sources, target, live)
    return len(live)


async def import_changed(kind: SourceKind, settings: Settings, folder: Path) -> dict[str, int]:
    """Save every file of ``folder`` whose text differs from the live one, checked as one set before any save."""
    async with _migrated(settings) as engine:
        sources = kind.open(engine, settings)
        live = await sources.live()
        files = _read_folder(sources, folder)
        changes = {key: text for key, text in files.items() if text != live.get(key)}
        if not changes:
            return {}
        return await sources.save_checked(changes, f"cli:{getpass.getuser()}")


def _write_folder(sources: SourceSet, target: Path, texts: dict[str, str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for key, text in texts.items():
        path = sources.path_in(target, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _read_folder(sources: SourceSet, folder: Path) -> dict[str, str]:
    return {key: sources.path_in(folder, key).read_text(encoding="utf-8") for key in sources.keys_in(folder)}


def _fail(exc: RecoveryError, lines: list[str] | None) -> typer.Exit:
    for line in lines or [str(exc)]:
        errors.print(Text(f"error: {line}", style="red"))
    if lines is not None:
        errors.print("nothing was saved")
    return typer.Exit(1)


def export_command(kind: SourceKind, directory: Path, config: Path | None) -> None:
    """``export DIRECTORY``: the summary on stdout, an error and exit 1 on stderr."""
    try:
        count = asyncio.run(export_live(kind, load_settings(config), directory))
    except RecoveryError as exc:
        raise _fail(exc, None) from exc
    console.print(f"{count} {kind.noun} written to {directory}")


def import_command(kind: SourceKind, directory: Path, config: Path | None) -> None:
    """``import DIRECTORY``: each saved version on stdout; a refused set is explained and nothing is saved."""
    try:
        saved = asyncio.run(import_changed(kind, load_settings(config), directory))
    except RecoveryError as exc:
        raise _fail(exc, kind.refusal(exc)) from exc
    for key, version in saved.items():
        console.print(f"{key}: version {version}")
    console.print(f"{len(saved)} {kind.noun} saved" if saved else "nothing changed")
