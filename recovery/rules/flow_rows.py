"""Saved flow versions: append-only rows; the newest version of a name is the live one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.store.schema import flow_versions
from recovery.store.versions import VersionedSources


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


FLOW_VERSIONS = VersionedSources(flow_versions, key="name", row_type=FlowVersion, noun="flow ")


async def save_version(
    engine: AsyncEngine, *, name: str, source: str, enabled: bool, created_by: str, comment: str | None, now: datetime
) -> int:
    """Append a version numbered one above the newest; two concurrent saves both land, one after the other."""
    return await FLOW_VERSIONS.save_version(
        engine, name, source=source, enabled=enabled, created_by=created_by, created_at=now, comment=comment
    )
