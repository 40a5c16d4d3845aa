"""``recovery validate FILE.jsonl``: offline, the reason each line's dead letter would carry; nothing published."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from recovery.adapters.base import Skipped
from recovery.adapters.formats import FORMATS
from recovery.events import Rejection
from recovery.ingest.platform_formats import decode_platform_record
from recovery.ingest.poison import decode_record

console = Console()
errors = Console(stderr=True)
PROGRESS_FROM = 2000  # lines: below this the check is instant and a bar is noise


@dataclass(frozen=True, kw_only=True)
class LineVerdict:
    """One line's outcome: valid (with its native event count), skipped, or the dead-letter reason."""

    line: int
    reason: str | None = None
    skipped: str | None = None


def check_line(number: int, raw: bytes, *, format_: str, max_bytes: int) -> LineVerdict:
    """What ingest would do with this line read from a topic of ``format_``."""
    if format_ == "native":
        parsed = decode_record(raw, max_bytes=max_bytes)
        return LineVerdict(line=number, reason=parsed.reason if isinstance(parsed, Rejection) else None)
    outcome = decode_platform_record(raw, None, format_, max_bytes=max_bytes)
    if isinstance(outcome, Rejection):
        return LineVerdict(line=number, reason=outcome.reason)
    if isinstance(outcome, Skipped):
        return LineVerdict(line=number, skipped=outcome.type)
    return LineVerdict(line=number)


def check_lines(lines: Iterable[tuple[int, bytes]], *, format_: str, max_bytes: int) -> Iterable[LineVerdict]:
    """Each non-blank line's verdict, in order."""
    for number, raw in lines:
        yield check_line(number, raw, format_=format_, max_bytes=max_bytes)


def validate(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL file, one event per line."),
    format_: str = typer.Option(
        "native", "--format", help="Read the lines as this input format: " + ", ".join(sorted(FORMATS)) + "."
    ),
    max_event_bytes: int = typer.Option(1_000_000, help="Lines above this size are refused, as ingest does."),
) -> None:
    """Check events offline: each invalid line with exactly its dead-letter reason; exit 1 if any is invalid."""
    if format_ not in FORMATS:
        errors.print(f"[red]error:[/] --format must be one of {', '.join(sorted(FORMATS))}")
        raise typer.Exit(2)
    lines = [(n, raw) for n, raw in enumerate(file.read_bytes().splitlines(), start=1) if raw.strip()]
    invalid = skipped = 0
    with Progress(console=errors, transient=True, disable=len(lines) < PROGRESS_FROM) as progress:
        task = progress.add_task(f"validating {file.name}", total=len(lines))
        for verdict in check_lines(lines, format_=format_, max_bytes=max_event_bytes):
            progress.advance(task)
            if verdict.reason is not None:
                invalid += 1
                console.print(f"{file}:{verdict.line}: {escape(verdict.reason)}", highlight=False, soft_wrap=True)
            elif verdict.skipped is not None:
                skipped += 1
    valid = len(lines) - invalid - skipped
    summary = f"{valid} valid, {invalid} invalid" + (f", {skipped} skipped (unused types)" if skipped else "")
    errors.print(("[red]✗[/] " if invalid else "[green]✓[/] ") + summary)
    if invalid:
        raise typer.Exit(1)
