"""Worker heartbeats: each scheduler beats every second; a silent worker's claims are taken over."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.store.schema import workers
from recovery.store.sql import insert_ignore

# A stopped worker is marked as long dead, so its leftover claims (if any) are taken over at once.
_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


async def beat(conn: AsyncConnection, worker: str, now: datetime) -> None:
    """Record that ``worker`` is alive at ``now``."""
    result = await conn.execute(update(workers).where(workers.c.worker_id == worker).values(heartbeat_at=now))
    if not result.rowcount:
        await insert_ignore(conn, workers, [{"worker_id": worker, "heartbeat_at": now, "started_at": now}])


async def stopped(conn: AsyncConnection, worker: str) -> None:
    """A clean stop: the worker's row says it is gone."""
    await conn.execute(update(workers).where(workers.c.worker_id == worker).values(heartbeat_at=_LONG_AGO))
