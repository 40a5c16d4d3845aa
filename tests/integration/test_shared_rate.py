"""Provider rates hold for the whole deployment: two replicas' pacers on one PostgreSQL send no faster, together,
than the configured rate (each process alone would, with a token bucket of its own, send twice as fast)."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from recovery.channels.rate import ChannelRates
from recovery.channels.slots import grace
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head
from recovery.store.schema import channel_pacing

pytestmark = pytest.mark.postgres

RATE = 20.0
SECONDS = 3.0


async def replica(rates: ChannelRates, sent: list[float], until: float) -> None:
    """A scheduler's hand-out, reduced to the pacing: always a step waiting, sent as soon as a slot allows."""
    while (now := time.monotonic()) < until:
        if rates.take("sms", now):
            sent.append(now)
            continue
        await asyncio.sleep(min(rates.wait("sms", now), 0.05))


async def test_two_replicas_sharing_the_database_send_at_most_the_rate_together(postgres_url: str) -> None:
    engines = [create_engine(postgres_url) for _ in range(2)]  # two pools, as two pods have
    await upgrade_to_head(engines[0])
    try:
        pacers = [ChannelRates({"sms": RATE}, time.monotonic(), engine=engine) for engine in engines]
        assert all(rates.shared for rates in pacers)
        sent: list[list[float]] = [[], []]
        until = time.monotonic() + SECONDS
        await asyncio.gather(*(replica(rates, out, until) for rates, out in zip(pacers, sent, strict=True)))
        times = sorted(sent[0] + sent[1])
        assert len(times) <= RATE * SECONDS + 1, len(times)
        assert len(times) >= 0.8 * RATE * SECONDS, len(times)  # the rate is used, not lost between replicas
        assert sent[0] and sent[1]
        for start in times:  # any second: at most the rate, plus slots still within their grace
            assert sum(start <= at < start + 1.0 for at in times) <= RATE * (1.0 + grace(1 / RATE)) + 1
        async with engines[0].connect() as conn:
            rows = (await conn.execute(select(channel_pacing.c.channel))).scalars().all()
        assert rows == ["sms"]  # unlimited channels never touched the table
    finally:
        for engine in engines:
            await engine.dispose()
