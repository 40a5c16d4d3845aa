"""Saved template versions: append-only rows; the newest version of a path is the live one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.store.schema import template_versions

_SAVE_ATTEMPTS = 5


@dataclass(frozen=True, kw_only=True)
class TemplateVersion:
    """One saved source of a template file."""

    path: str
    version: int
    source: str
    created_by: str
    created_at: datetime
    comment: str | None


def _row(row: object) -> TemplateVersion:
    mapping = row._mapping  # type: ignore[attr-defined]
    return TemplateVersion(**{key: mapping[key] for key in TemplateVersion.__dataclass_fields__})


async def live_versions(conn: AsyncConnection) -> dict[str, TemplateVersion]:
    """The newest saved version of every path that has one."""
    newest = (
        select(template_versions.c.path, func.max(template_versions.c.version).label("version"))
        .group_by(template_versions.c.path)
        .subquery()
    )
    rows = await conn.execute(
        select(template_versions).join(
            newest,
            (template_versions.c.path == newest.c.path) & (template_versions.c.version == newest.c.version),
        )
    )
    return {version.path: version for version in map(_row, rows)}


async def marker(conn: AsyncConnection) -> tuple[int, int]:
    """A cheap fingerprint of the table (rows, highest version): it changes whenever a version is saved."""
    row = (await conn.execute(select(func.count(), func.coalesce(func.sum(template_versions.c.version), 0)))).one()
    return int(row[0]), int(row[1])


async def history(conn: AsyncConnection, path: str) -> list[TemplateVersion]:
    """Every saved version of ``path``, newest first."""
    rows = await conn.execute(
        select(template_versions).where(template_versions.c.path == path).order_by(template_versions.c.version.desc())
    )
    return [_row(row) for row in rows]


async def get_version(conn: AsyncConnection, path: str, version: int) -> TemplateVersion | None:
    """One saved version, or ``None``."""
    row = (
        await conn.execute(
            select(template_versions).where(template_versions.c.path == path, template_versions.c.version == version)
        )
    ).first()
    return None if row is None else _row(row)


async def save_version(
    engine: AsyncEngine, *, path: str, source: str, created_by: str, comment: str | None, now: datetime
) -> int:
    """Append a version numbered one above the newest; two concurrent saves both land, one after the other."""
    for _ in range(_SAVE_ATTEMPTS):
        try:
            async with engine.begin() as conn:
                newest = await conn.scalar(
                    select(func.coalesce(func.max(template_versions.c.version), 0)).where(
                        template_versions.c.path == path
                    )
                )
                version = int(newest or 0) + 1
                await conn.execute(
                    insert(template_versions).values(
                        path=path,
                        version=version,
                        source=source,
                        created_by=created_by,
                        created_at=now,
                        comment=comment,
                    )
                )
                return version
        except IntegrityError:
            continue  # another replica took this number: read the newest again
    raise RuntimeError(f"could not save a version of {path}: too many concurrent saves")
