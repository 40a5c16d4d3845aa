"""Saved template versions: append-only rows; the newest version of a path is the live one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.store.schema import template_versions
from recovery.store.versions import VersionedSources


@dataclass(frozen=True, kw_only=True)
class TemplateVersion:
    """One saved source of a template file."""

    path: str
    version: int
    source: str
    created_by: str
    created_at: datetime
    comment: str | None


TEMPLATE_VERSIONS = VersionedSources(template_versions, key="path", row_type=TemplateVersion, noun="")


async def save_version(
    engine: AsyncEngine, *, path: str, source: str, created_by: str, comment: str | None, now: datetime
) -> int:
    """Append a version numbered one above the newest; two concurrent saves both land, one after the other."""
    return await TEMPLATE_VERSIONS.save_version(
        engine, path, source=source, created_by=created_by, created_at=now, comment=comment
    )
