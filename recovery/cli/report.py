"""``recovery report``: funnel, recovery and attribution figures as tables, JSON or an HTML page."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from recovery.attribution.queries import build_stats
from recovery.attribution.render import render_html, render_table
from recovery.durations import parse_duration
from recovery.errors import ConfigError, RecoveryError, require_extra
from recovery.settings import Settings, load_settings
from recovery.store.database import create_engine
from recovery.store.migrate import require_current_schema


class ReportFormat(StrEnum):
    """How ``recovery report`` prints its figures."""

    TABLE = "table"
    JSON = "json"


async def read_stats(
    settings: Settings, *, since: datetime | None, now: datetime, store: str | None = None
) -> dict[str, Any]:
    """Open the configured database (at the current schema: it never migrates), read every figure, close it."""
    engine = create_engine(settings.database.url)
    try:
        await require_current_schema(engine)
        return await build_stats(engine, since=since, now=now, store=store)
    except (SQLAlchemyError, OSError) as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise RecoveryError(f"database.url {where}: cannot read the figures: {exc}") from exc
    finally:
        await engine.dispose()


def report(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML configuration file (default: $RECOVERY_CONFIG or config/recovery.yaml)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only carts and journeys of this last period, e.g. 24h or 7d (default: all time)."
    ),
    output: ReportFormat = typer.Option(ReportFormat.TABLE, "--format", "-f", help="table or json."),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML page with charts to this file."),
    store: str | None = typer.Option(None, "--store", help="Only this store's carts and journeys (default: all)."),
) -> None:
    """Funnel, recovery and attribution figures: per flow, step and channel, and lift over the holdout."""
    errors = Console(stderr=True, soft_wrap=True)  # whole lines: errors are read by scripts too
    now = datetime.now(UTC)
    try:
        cutoff = now - parse_duration(since) if since else None
    except ValueError as exc:
        raise _fail(errors, f"--since: {exc}", 2) from exc
    try:
        if html is not None:  # before the database work, not after it
            require_extra("report", "--html")
        settings = load_settings(config)
    except ConfigError as exc:
        raise _fail(errors, str(exc), 2) from exc
    try:
        stats = asyncio.run(read_stats(settings, since=cutoff, now=now, store=store))
    except RecoveryError as exc:
        raise _fail(errors, str(exc), 1) from exc
    if output is ReportFormat.JSON:
        typer.echo(json.dumps(stats, indent=2, ensure_ascii=False))
    else:
        render_table(stats, Console())
    if html is not None:
        render_html(stats, html)
        errors.print(Text(f"HTML report written to {html}"))


def _fail(errors: Console, message: str, code: int) -> typer.Exit:
    # Text, not markup: a message quoting a bracketed value must print as it is.
    errors.print(Text("error: ", style="red") + Text(message))
    return typer.Exit(code)
