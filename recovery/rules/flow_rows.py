"""Saved flow versions: append-only rows; the newest version of a name is the live one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.store.schema import flow_versions

_SAVE_ATTEMPTS = 5


@dataclass(frozen=True, kw_only=True)
class FlowVersion:
    """One saved source (the YAML of one flow) of a named flow."""

    name: str
    version: int
    source: str
    enabled: bool
    created_by: str
    created_at: datetime
    comment: str | None


def _row(row: object) -> FlowVersion:
    mapping = row._mapping  # type: ignore[attr-defined]
    return FlowVersion(**{key: mapping[key] for key in FlowVersion.__dataclass_fields__})


async def live_versions(conn: AsyncConnection) -> dict[str, FlowVersion]:
    """The newest saved version of every flow that has one."""
    newest = (
        select(flow_versions.c.name, func.max(flow_versions.c.version).label("version"))
        .group_by(flow_versions.c.name)
        .subquery()
    )
    rows = await conn.execute(
        select(flow_versions).join(
            newest, (flow_versions.c.name == newest.c.name) & (flow_versions.c.version == newest.c.version)
        )
    )
    return {version.name: version for version in map(_row, rows)}


async def marker(conn: AsyncConnection) -> tuple[int, int]:
    """A cheap fingerprint of the table (rows, sum of versions): it changes whenever a version is saved."""
    row = (await conn.execute(select(func.count(), func.coalesce(func.sum(flow_versions.c.version), 0)))).one()
    return int(row[0]), int(row[1])


async def history(conn: AsyncConnection, name: str) -> list[FlowVersion]:
    """Every saved version of ``name``, newest first."""
    rows = await conn.execute(
        select(flow_versions).where(flow_versions.c.name == name).order_by(flow_versions.c.version.desc())
    )
    return [_row(row) for row in rows]


async def get_version(conn: AsyncConnection, name: str, version: int) -> FlowVersion | None:
    """One saved version, or ``None``."""
    query = select(flow_versions).where(flow_versions.c.name == name, flow_versions.c.version == version)
    row = (await conn.execute(query)).first()
    return None if row is None else _row(row)


async def save_version(
    engine: AsyncEngine,
    *,
    name: str,
    source: str,
    enabled: bool,
    created_by: str,
    comment: str | None,
    now: datetime,
) -> int:
    """Append a version numbered one above the newest; two concurrent saves both land, one after the other."""
    for _ in range(_SAVE_ATTEMPTS):
        try:
            async with engine.begin() as conn:
                newest = await conn.scalar(
                    select(func.coalesce(func.max(flow_versions.c.version), 0)).where(flow_versions.c.name == name)
                )
                version = int(newest or 0) + 1
                await conn.execute(
                    insert(flow_versions).values(
                        name=name,
                        version=version,
                        source=source,
                        enabled=enabled,
                        created_by=created_by,
                        created_at=now,
                        comment=comment,
                    )
                )
                return version
        except IntegrityError:
            continue  # another replica took this number: read the newest again
    raise RuntimeError(f"could not save a version of flow {name}: too many concurrent saves")
