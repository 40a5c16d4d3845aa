"""Saving a template version safely: the full check with the candidate in place, then an appended row."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.errors import NotFound, RecoveryError
from recovery.render import template_rows
from recovery.render.bounds import current_limits
from recovery.render.check import Severity, find_template_problems
from recovery.render.files import RenderTimedOut
from recovery.render.offload import off_loop
from recovery.render.saved_files import message_file

# A template path as the API names it: "<locale>/<file>", never leaving the templates folder.
_PATH = re.compile(r"[a-z]{2,3}/[A-Za-z0-9_][A-Za-z0-9_.]*")


@dataclass(frozen=True, kw_only=True)
class LineError:
    """One reason a source is refused, at its line when it has one."""

    line: int | None
    message: str


class TemplateRejected(RecoveryError):
    """The candidate source fails the check; nothing was saved."""

    def __init__(self, errors: list[LineError]) -> None:
        self.errors = errors
        super().__init__("; ".join(error.message for error in errors))


class UnknownTemplate(NotFound):
    """The path names no default template file, or the template has no such version."""


def editable_paths(templates_dir: Path) -> list[str]:
    """Every template file a marketer may version: message parts, layouts and partials, by path."""
    return sorted(
        f"{path.parent.name}/{path.name}"
        for path in templates_dir.glob("*/*")
        if path.is_file() and _PATH.fullmatch(f"{path.parent.name}/{path.name}")
    )


def require_path(templates_dir: Path, path: str, *, create: bool = False) -> str:
    """``path`` when it names a template file (or, with ``create``, a new message file); ``UnknownTemplate``."""
    if path in editable_paths(templates_dir):
        return path
    if create and message_file(templates_dir, path) is not None:
        return path  # a variant's new template, or a new language such as it/
    raise UnknownTemplate(
        f"no template '{path}': a new one is named <language>/<name>.<email|sms>.<subject|txt|html>"
        if create
        else f"no template '{path}'"
    )


def check_sources(templates_dir: Path, sources: Mapping[str, str]) -> list[LineError]:
    """Errors of the whole template set with ``sources`` in place of their files."""
    problems = find_template_problems(templates_dir, templates_dir / "samples", sources=sources)
    return [LineError(line=p.line, message=p.message) for p in problems if p.severity is Severity.ERROR]


async def check_off_loop(templates_dir: Path, sources: Mapping[str, str]) -> list[LineError]:
    """``check_sources`` in a render thread, bounded by ``render.check_deadline``; the loop keeps serving."""
    try:
        return await off_loop(current_limits().check_deadline, check_sources, templates_dir, sources)
    except RenderTimedOut as exc:
        return [LineError(line=exc.line, message=str(exc))]


async def live_sources(engine: AsyncEngine) -> dict[str, str]:
    """The newest saved source of every versioned path."""
    async with engine.connect() as conn:
        return {path: row.source for path, row in (await template_rows.TEMPLATE_VERSIONS.live_versions(conn)).items()}


async def save_checked(
    engine: AsyncEngine,
    templates_dir: Path,
    *,
    path: str,
    source: str,
    created_by: str,
    comment: str | None,
    now: datetime,
) -> int:
    """Save ``source`` as the next version of ``path`` if the full check passes; ``TemplateRejected`` if not."""
    require_path(templates_dir, path, create=True)
    errors = await check_off_loop(templates_dir, {**await live_sources(engine), path: source})
    if errors:
        raise TemplateRejected(errors)
    return await template_rows.save_version(
        engine, path=path, source=source, created_by=created_by, comment=comment, now=now
    )


async def save_many_checked(
    engine: AsyncEngine, templates_dir: Path, changes: Mapping[str, str], *, created_by: str, now: datetime
) -> dict[str, int]:
    """Save several sources together (an import): checked as one set, all saved or none."""
    for path in changes:
        require_path(templates_dir, path, create=True)
    errors = await check_off_loop(templates_dir, {**await live_sources(engine), **changes})
    if errors:
        raise TemplateRejected(errors)
    return {
        path: await template_rows.save_version(
            engine, path=path, source=source, created_by=created_by, comment="import", now=now
        )
        for path, source in sorted(changes.items())
    }


async def current_source(
    engine: AsyncEngine, templates_dir: Path, path: str
) -> tuple[str, int, datetime | None, str | None]:
    """The live source of ``path``: its newest saved version, else the default file (version 0)."""
    require_path(templates_dir, path, create=True)
    async with engine.connect() as conn:
        saved = await template_rows.TEMPLATE_VERSIONS.history(conn, path)
    if saved:
        newest = saved[0]
        return newest.source, newest.version, newest.created_at, newest.created_by
    require_path(templates_dir, path)  # never saved: it must be a file
    return (templates_dir / path).read_text(encoding="utf-8"), 0, None, None
