"""``recovery db upgrade|current``: the only commands that change or report the database schema."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.errors import ConfigError, RecoveryError
from recovery.settings import load_settings
from recovery.store.database import create_engine
from recovery.store.migrate import current_revision, head_revision, upgrade_to_head

db_app = typer.Typer(no_args_is_help=True)
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")

ConfigOption = typer.Option(None, "--config", "-c", help="YAML configuration file.")


def with_engine(config: Path | None, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run ``work`` on the configured database; exit 2 on bad configuration, 1 when the database fails."""
    try:
        settings = load_settings(config)
        engine = create_engine(settings.database.url)
    except ConfigError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc

    async def main() -> T:
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (RecoveryError, SQLAlchemyError, OSError) as exc:
        errors.print(f"[red]error:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from exc


@db_app.command()
def upgrade(config: Path | None = ConfigOption) -> None:
    """Apply every pending migration (safe to run from several places: one at a time on PostgreSQL)."""

    async def work(engine: AsyncEngine) -> str | None:
        before = await current_revision(engine)
        await upgrade_to_head(engine)
        return before

    before = with_engine(config, work)
    head = head_revision()
    if before == head:
        console.print(f"database already at revision {head}")
    else:
        console.print(f"database upgraded from {before or 'empty'} to revision {head}")


@db_app.command()
def current(config: Path | None = ConfigOption) -> None:
    """Print the database's schema revision and whether it is the one this version needs."""
    revision = with_engine(config, current_revision)
    head = head_revision()
    state = "up to date" if revision == head else f"behind: run `recovery db upgrade` (needs {head})"
    console.print(f"{revision or 'none'} ({state})")
