"""Provider rates hold for the whole deployment: two replicas' pacers on one PostgreSQL send no faster, together,
than the configured rate (each process alone would, with a token bucket of its own, send twice as fast)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from recovery.channels.base import Delivery, OutgoingMessage
from recovery.channels.rate import ChannelRates
from recovery.channels.slots import grace
from recovery.render.composer import PlainComposer
from recovery.settings import QuietHoursPolicy, Settings
from recovery.states import ChannelName
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head
from recovery.store.schema import channel_pacing
from recovery.testing import Pipeline, ScriptedChannel
from tests.harness import failed_payment
from tests.unit.test_scheduler_pipeline import NOW

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


class TimedChannel(ScriptedChannel):
    """An email provider that notes when each send reached it."""

    def __init__(self) -> None:
        super().__init__(ChannelName.EMAIL)
        self.at: list[float] = []

    async def send(self, message: OutgoingMessage) -> Delivery:
        self.at.append(time.monotonic())
        return await super().send(message)


async def test_two_schedulers_on_one_database_keep_the_email_rate_together(tmp_path: Path, postgres_url: str) -> None:
    """Two real schedulers (two pods' worth: own pools, own senders) fire 40 due emails at 10/s in all: about
    4 s, where two per-process buckets would let 20/s and more through."""
    flows = tmp_path / "flows.yaml"
    flows.write_text(
        "flows:\n  - name: payment_failed\n    trigger: payment.failed\n    steps:\n"
        "      - {name: retry_payment, after: 0s, channel: email, template: payment_failed}\n",
        encoding="utf-8",
    )
    settings = Settings(
        database={"url": postgres_url},
        flows_file=flows,
        guards={"quiet_hours": QuietHoursPolicy(channels=()), "frequency_cap": 0},
        # Two senders each: a scheduler holds a few claimed steps at a time, so both get work.
        channels={"concurrency": 2, "email": {"max_per_second": 10}},
    )
    providers = [TimedChannel(), TimedChannel()]
    async with contextlib.AsyncExitStack() as stack:
        pods = [
            await stack.enter_async_context(
                Pipeline.start(
                    settings=settings,
                    channels={ChannelName.EMAIL: email, ChannelName.SMS: ScriptedChannel(ChannelName.SMS)},
                    composer=PlainComposer(),
                    now=NOW,
                )
            )
            for email in providers
        ]
        await pods[0].ingest(*[failed_payment(i, at=NOW) for i in range(40)], topic="payment")
        stop = asyncio.Event()
        runs = [asyncio.create_task(pod.scheduler.run(stop)) for pod in pods]
        try:
            deadline = time.monotonic() + 30
            while sum(len(p.sent) for p in providers) < 40:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*runs), 30)
    times = sorted(providers[0].at + providers[1].at)
    assert all(p.sent for p in providers), [len(p.sent) for p in providers]
    assert sorted(m.cart_id for p in providers for m in p.sent) == sorted(f"cart-{i}" for i in range(40))
    assert times[-1] - times[0] >= 39 / 10 * 0.9, times[-1] - times[0]
    for start in times:
        assert sum(start <= at < start + 1.0 for at in times) <= 10 * (1.0 + grace(1 / 10)) + 1
