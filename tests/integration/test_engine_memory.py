"""Memory: a batch the service has written is freed afterwards; the database driver keeps none of it (PostgreSQL)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from contextvars import ContextVar

from sqlalchemy import text

from recovery.store.database import create_engine

# The consumer's framework (FastStream) keeps the message being handled, a whole Kafka batch, in a context variable.
_HANDLED: ContextVar[object | None] = ContextVar("handled", default=None)


class _Batch:
    """Stands for a batch of records (weak-referenceable, so the test can see it freed)."""


async def test_a_written_batch_is_freed_once_its_handler_returns(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE seen (k integer PRIMARY KEY)"))

        async def handle() -> weakref.ref[_Batch]:
            batch = _Batch()
            _HANDLED.set(batch)
            for start in (0, 3):  # twice: the second write hits the driver's statement cache
                async with engine.begin() as conn:
                    await conn.execute(
                        text("INSERT INTO seen (k) VALUES (:k) ON CONFLICT DO NOTHING"),
                        [{"k": start + i} for i in range(3)],
                    )
            return weakref.ref(batch)

        handler = asyncio.create_task(handle())
        freed = await handler
        del handler  # the finished task itself holds its context
        await asyncio.sleep(0)
        gc.collect()
        # Before the fix asyncpg armed a 5-minute timer per cached statement that kept this context, and the batch.
        assert freed() is None
    finally:
        await engine.dispose()
