"""Versioned sources (templates, flows): append-only rows keyed by a name; the newest version of a key is live.

One implementation for every such table: the key column (``path``, ``name``) and the row type differ, the
rules (newest per key, history newest first, save one above the newest with a retry on a clash) do not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

V = TypeVar("V")

_SAVE_ATTEMPTS = 5


class VersionedSources(Generic[V]):
    """The rows of one versioned-source table, read as ``row_type`` (a dataclass named like the columns)."""

    def __init__(self, table: Table, *, key: str, row_type: Callable[..., V], noun: str) -> None:
        self.table = table
        self.key = table.c[key]
        self._key_name = key
        self._row_type = row_type
        self._fields = [field.name for field in dataclasses.fields(row_type)]  # type: ignore[arg-type]
        self._noun = noun  # names the key in the clash error ("flow checkout", "en/x.email.subject")

    def _row(self, row: Any) -> V:
        mapping = row._mapping
        return self._row_type(**{name: mapping[name] for name in self._fields})

    async def live_versions(self, conn: AsyncConnection) -> dict[str, V]:
        """The newest saved version of every key that has one."""
        table = self.table
        newest = select(self.key, func.max(table.c.version).label("version")).group_by(self.key).subquery()
        rows = await conn.execute(
            select(table).join(newest, (self.key == newest.c[self._key_name]) & (table.c.version == newest.c.version))
        )
        return {row._mapping[self._key_name]: self._row(row) for row in rows}

    async def marker(self, conn: AsyncConnection) -> tuple[int, int]:
        """A cheap fingerprint of the table (rows, sum of versions): it changes whenever a version is saved."""
        query = select(func.count(), func.coalesce(func.sum(self.table.c.version), 0))
        row = (await conn.execute(query)).one()
        return int(row[0]), int(row[1])

    async def history(self, conn: AsyncConnection, key: str) -> list[V]:
        """Every saved version of ``key``, newest first."""
        rows = await conn.execute(select(self.table).where(self.key == key).order_by(self.table.c.version.desc()))
        return [self._row(row) for row in rows]

    async def get_version(self, conn: AsyncConnection, key: str, version: int) -> V | None:
        """One saved version, or ``None``."""
        query = select(self.table).where(self.key == key, self.table.c.version == version)
        row = (await conn.execute(query)).first()
        return None if row is None else self._row(row)

    async def save_version(self, engine: AsyncEngine, key: str, **values: object) -> int:
        """Append ``values`` as the version one above the newest of ``key``; concurrent saves both land, in turn."""
        for _ in range(_SAVE_ATTEMPTS):
            try:
                async with engine.begin() as conn:
                    newest = await conn.scalar(
                        select(func.coalesce(func.max(self.table.c.version), 0)).where(self.key == key)
                    )
                    version = int(newest or 0) + 1
                    await conn.execute(insert(self.table).values({self._key_name: key, "version": version, **values}))
                    return version
            except IntegrityError:
                continue  # another replica took this number: read the newest again
        raise RuntimeError(f"could not save a version of {self._noun}{key}: too many concurrent saves")
