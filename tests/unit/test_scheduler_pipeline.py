"""The scheduler's sender pipeline on SQLite with fake channels: many senders, wake-up, stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from recovery.channels.base import Delivery, OutgoingMessage
from recovery.render.composer import PlainComposer
from recovery.settings import EmailSettings, QuietHoursPolicy, Settings
from recovery.states import ChannelName
from recovery.store.database import create_engine
from recovery.store.schema import steps
from recovery.testing import Pipeline, ScriptedChannel
from tests.harness import failed_payment

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
FLOWS = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: email, template: payment_failed}
"""


class GatedChannel(ScriptedChannel):
    """Sends wait at a gate; records how many were in flight at most."""

    def __init__(self) -> None:
        super().__init__(ChannelName.EMAIL)
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.arrived = asyncio.Condition()

    async def send(self, message: OutgoingMessage) -> Delivery:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        async with self.arrived:
            self.arrived.notify_all()
        try:
            await self.gate.wait()
            return await super().send(message)
        finally:
            self.in_flight -= 1

    async def until_in_flight(self, count: int) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: self.in_flight >= count), 10)


def settings_for(tmp_path: Path, *, concurrency: int, poll: str = "1h", url: str | None = None) -> Settings:
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS, encoding="utf-8")
    return Settings(
        database={"url": url or f"sqlite+aiosqlite:///{tmp_path / 'recovery.db'}"},
        flows_file=flows,
        guards={"quiet_hours": QuietHoursPolicy(channels=()), "frequency_cap": 0},
        channels={"concurrency": concurrency},
        # An hour between polls: anything sent sooner was sent because the claimer was woken.
        scheduler={"poll_interval": poll},
    )


@contextlib.asynccontextmanager
async def pipeline_with(settings: Settings, email: ScriptedChannel) -> AsyncIterator[Pipeline]:
    channels = {ChannelName.EMAIL: email, ChannelName.SMS: ScriptedChannel(ChannelName.SMS)}
    async with Pipeline.start(settings=settings, channels=channels, composer=PlainComposer(), now=NOW) as started:
        yield started


@contextlib.asynccontextmanager
async def running(pipeline: Pipeline) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.scheduler.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def idle_observed(pipeline: Pipeline) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Yields a wait for the claimer to be idle: nothing in flight (so no finished send wakes it) and
    waiting for its next poll. A step created after that is sent sooner only if something woke it."""
    scheduler = pipeline.scheduler
    waiting = asyncio.Event()
    wait = scheduler._until_woken

    async def observed(stop: asyncio.Event, *, within: float) -> bool:
        waiting.set()
        try:
            return await wait(stop, within=within)
        finally:
            waiting.clear()

    async def until_idle() -> None:
        async def idle() -> None:
            while scheduler._busy or not waiting.is_set():  # noqa: ASYNC110 - two conditions, polled
                await asyncio.sleep(0.01)

        await asyncio.wait_for(idle(), 10)

    scheduler._until_woken = observed  # type: ignore[method-assign]
    yield until_idle


async def sent_count(email: ScriptedChannel, count: int) -> None:
    async def until() -> None:
        while len(email.sent) < count:  # noqa: ASYNC110 - the scheduler task fills it
            await asyncio.sleep(0.01)

    await asyncio.wait_for(until(), 30)


async def test_many_due_steps_are_each_sent_once_by_n_senders_at_a_time(tmp_path: Path) -> None:
    email = GatedChannel()
    async with pipeline_with(settings_for(tmp_path, concurrency=4), email) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(30)], topic="payment")
        async with running(pipeline):
            await email.until_in_flight(4)
            email.gate.set()
            await sent_count(email, 30)
    assert email.most_in_flight == 4, "four senders, never more"
    assert sorted(m.cart_id for m in email.sent) == sorted(f"cart-{i}" for i in range(30))


async def test_emails_in_flight_stay_within_the_email_concurrency(tmp_path: Path) -> None:
    # SMTP has no idempotency key: a kill can leave at most channels.email.concurrency emails unknown.
    email = GatedChannel()
    settings = settings_for(tmp_path, concurrency=16)
    settings = settings.model_copy(
        update={"channels": settings.channels.model_copy(update={"email": EmailSettings(concurrency=3)})}
    )
    async with pipeline_with(settings, email) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(12)], topic="payment")
        async with running(pipeline):
            await email.until_in_flight(3)
            await asyncio.sleep(0.2)  # room for more senders, were the cap not there
            email.gate.set()
            await sent_count(email, 12)
    assert email.most_in_flight == 3
    assert sorted(m.cart_id for m in email.sent) == sorted(f"cart-{i}" for i in range(12))


@pytest.mark.parametrize("email_cap", [None, 2], ids=["senders-full", "email-cap-full"])
async def test_while_every_sender_is_busy_the_claimer_sleeps_and_a_finished_send_starts_the_next(
    tmp_path: Path, email_cap: int | None
) -> None:
    """Steps held for a free sender (or under the email cap) are not a reason to turn: the claimer had spun
    without sleeping (15 000 turns in a burst of 1 000 SMS), its CPU taken from the sends themselves."""
    email = GatedChannel()
    settings = settings_for(tmp_path, concurrency=4)
    if email_cap is not None:
        settings = settings.model_copy(
            update={"channels": settings.channels.model_copy(update={"email": EmailSettings(concurrency=email_cap)})}
        )
    async with pipeline_with(settings, email) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(30)], topic="payment")
        scheduler = pipeline.scheduler
        turns = 0
        wait = scheduler._until_woken

        async def counted(stop: asyncio.Event, *, within: float) -> bool:
            nonlocal turns
            turns += 1
            return await wait(stop, within=within)

        scheduler._until_woken = counted  # type: ignore[method-assign]
        async with running(pipeline):
            await email.until_in_flight(email_cap or 4)
            await asyncio.sleep(0.1)
            before = turns
            await asyncio.sleep(0.5)  # every sender (or the cap) is taken; 26+ steps are held
            idle_turns = turns - before
            email.gate.set()
            await sent_count(email, 30)
    assert idle_turns <= 2, f"the claimer turned {idle_turns} times in 0.5 s with nothing it could do"
    assert sorted(m.cart_id for m in email.sent) == sorted(f"cart-{i}" for i in range(30))
    assert email.most_in_flight == (email_cap or 4)


async def test_a_step_due_now_is_sent_without_waiting_for_the_poll(tmp_path: Path) -> None:
    email = ScriptedChannel(ChannelName.EMAIL)
    async with pipeline_with(settings_for(tmp_path, concurrency=2), email) as pipeline:
        await pipeline.ingest(failed_payment(1, at=NOW), topic="payment")
        async with idle_observed(pipeline) as until_idle, running(pipeline):
            await sent_count(email, 1)
            await until_idle()
            await pipeline.ingest(failed_payment(2, at=NOW), topic="payment")
            await sent_count(email, 2)
    assert [m.cart_id for m in email.sent] == ["cart-1", "cart-2"]


async def test_on_stop_in_flight_sends_finish_and_queued_steps_go_to_the_next_worker(tmp_path: Path) -> None:
    email = GatedChannel()
    settings = settings_for(tmp_path, concurrency=2)
    async with pipeline_with(settings, email) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(5)], topic="payment")
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.scheduler.run(stop))
        await email.until_in_flight(2)
        stop.set()
        email.gate.set()  # the two in flight finish during the stop
        await asyncio.wait_for(task, 30)
        assert len(email.sent) == 2, "nothing new starts once stopping"

    # A new worker (a restart) takes the stopped worker's claims over at once and sends the rest.
    async with pipeline_with(settings, email) as restarted, running(restarted):
        await sent_count(email, 5)
    assert sorted(m.cart_id for m in email.sent) == sorted(f"cart-{i}" for i in range(5))


async def test_a_send_stuck_past_the_stop_grace_leaves_its_step_claimed(tmp_path: Path) -> None:
    email = GatedChannel()  # never opened
    async with pipeline_with(settings_for(tmp_path, concurrency=1), email) as pipeline:
        pipeline.scheduler._stop_grace_s = 0  # no waiting for the stuck send
        await pipeline.ingest(failed_payment(1, at=NOW), topic="payment")
        async with running(pipeline):
            await email.until_in_flight(1)
        assert email.sent == []
        engine = create_engine(pipeline.settings.database.url)
        try:
            async with engine.connect() as conn:
                status = await conn.scalar(select(steps.c.status))
        finally:
            await engine.dispose()
    assert status == "claimed", "left to the takeover, which reconciles the message first"


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_advancing_by_hand_fires_everything_due_through_the_real_loop(tmp_path: Path, concurrency: int) -> None:
    email = ScriptedChannel(ChannelName.EMAIL)
    async with pipeline_with(settings_for(tmp_path, concurrency=concurrency), email) as pipeline:
        await pipeline.ingest(*[failed_payment(i, at=NOW) for i in range(7)], topic="payment")
        await pipeline.advance(timedelta(0))
    assert len(email.sent) == 7
