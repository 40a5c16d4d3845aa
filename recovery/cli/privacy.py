"""``recovery erase`` (one shopper's data, on request) and ``recovery purge`` (the retention period)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console

from recovery.cli.db import ConfigOption, errors, with_engine
from recovery.clock import SystemClock
from recovery.consent import ledger
from recovery.keys import link_keys
from recovery.settings import load_settings
from recovery.store.forget import erase_shopper, purge_before

console = Console()


def _print_counts(counts: dict[str, int], nothing: str) -> None:
    if not counts:
        console.print(nothing)
        return
    for table, count in sorted(counts.items()):
        console.print(f"  {table}: {count} row(s) deleted")


def erase(
    email: str | None = typer.Option(None, help="The shopper's email address."),
    phone: str | None = typer.Option(None, help="The shopper's phone number (E.164, e.g. +33612345678)."),
    config: Path | None = ConfigOption,
) -> None:
    """Erase every trace of one shopper (GDPR): customer, carts, journeys, messages, clicks, tasks."""
    if bool(email) == bool(phone):
        errors.print("[red]error:[/] give exactly one of --email or --phone")
        raise typer.Exit(2)
    security = load_settings(config).security
    keys = link_keys(security.link_secret, security.previous_link_secret) if security.link_secret else None
    hashes = ledger.phone_hashes(phone, [key.hex() for key in keys.addresses] if keys else [])
    counts = with_engine(config, lambda engine: erase_shopper(engine, email=email, phone=phone, phone_hashes=hashes))
    # Never echo the address or number: this output ends up in terminals and job logs.
    _print_counts(counts, "no data found for that shopper")


def purge(
    days: int | None = typer.Option(None, min=1, help="Override retention.days for this run."),
    config: Path | None = ConfigOption,
) -> None:
    """Delete carts (with journeys, messages, clicks) and customers older than retention.days."""
    keep = days or load_settings(config).retention.days
    if keep is None:
        errors.print("[red]error:[/] retention.days is not set (env RECOVERY_RETENTION__DAYS); nothing to purge")
        raise typer.Exit(2)
    cutoff = SystemClock().now() - timedelta(days=keep)
    counts = with_engine(config, lambda engine: purge_before(engine, cutoff))
    console.print(f"purged data last touched before {cutoff:%Y-%m-%d %H:%M} UTC")
    _print_counts(counts, "nothing to purge")
