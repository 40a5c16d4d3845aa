"""Helpdesk hand-off: each new task POSTed once, signed, retried with backoff, never twice after success."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.clock import ManualClock
from recovery.desk.webhook import WebhookSender, backoff, signature
from recovery.store.database import create_engine
from tests.fakes.desk import seed_task
from tests.fakes.helpdesk import SECRET, Helpdesk, helpdesk

NOW = datetime(2026, 1, 7, 10, tzinfo=UTC)
__all__ = ["helpdesk"]  # the fixture


def sender(engine: AsyncEngine, clock: ManualClock, helpdesk: Helpdesk, attempts: int = 8) -> WebhookSender:
    return WebhookSender(engine=engine, clock=clock, url=helpdesk.url, secret=SECRET, attempts=attempts)


async def test_a_new_task_is_posted_once_signed_with_the_task(engine: AsyncEngine, helpdesk: Helpdesk) -> None:
    """The helpdesk receives the task (cart value, phone to call) once; later passes send nothing."""
    clock = ManualClock(NOW)
    task_id = await seed_task(engine, NOW)
    hook = sender(engine, clock, helpdesk)
    try:
        assert await hook.tick() == 1
        clock.advance(timedelta(hours=1))
        assert await hook.tick() == 0
    finally:
        await hook.aclose()
    assert helpdesk.bad_signatures == 0
    [post] = helpdesk.received
    assert (post["type"], post["key"], post["task"]["task_id"]) == ("callback_task.created", task_id, task_id)
    assert (post["task"]["cart_value"], post["task"]["reason"]) == (320.0, "payment_failed")


async def test_a_failing_helpdesk_is_retried_with_backoff_until_it_accepts(
    engine: AsyncEngine, helpdesk: Helpdesk
) -> None:
    """503 then 500: nothing is retried before the backoff; the third try lands, and only once."""
    clock = ManualClock(NOW)
    helpdesk.answers = [503, 500]
    await seed_task(engine, NOW)
    hook = sender(engine, clock, helpdesk)
    try:
        assert await hook.tick() == 1  # 503
        assert await hook.tick() == 0  # waiting for the backoff
        clock.advance(backoff(1))
        assert await hook.tick() == 1  # 500
        clock.advance(backoff(2))
        assert await hook.tick() == 1  # 201
        clock.advance(timedelta(hours=2))
        assert await hook.tick() == 0
    finally:
        await hook.aclose()
    assert len(helpdesk.received) == 1


async def test_the_webhook_gives_up_after_the_configured_attempts(engine: AsyncEngine, helpdesk: Helpdesk) -> None:
    """A helpdesk that always fails gets ``attempts`` tries, then no more."""
    clock = ManualClock(NOW)
    helpdesk.answers = [500] * 10
    await seed_task(engine, NOW)
    hook = sender(engine, clock, helpdesk, attempts=3)
    tries = 0
    try:
        for _ in range(6):
            tries += await hook.tick()
            clock.advance(timedelta(hours=1))
    finally:
        await hook.aclose()
    assert tries == 3 and helpdesk.received == []


async def test_two_replicas_post_each_task_once(engine: AsyncEngine, database_url: str, helpdesk: Helpdesk) -> None:
    """Two senders on their own engines tick at the same moment: every task reaches the helpdesk once."""
    clock = ManualClock(NOW)
    for n in range(6):
        await seed_task(engine, NOW, cart_id=f"c{n}")
    other = create_engine(database_url)
    one, two = sender(engine, clock, helpdesk), sender(other, clock, helpdesk)
    try:
        counts = await asyncio.gather(one.tick(), two.tick())
    finally:
        await one.aclose()
        await two.aclose()
        await other.dispose()
    assert sum(counts) == 6
    keys = [post["key"] for post in helpdesk.received]
    assert len(keys) == len(set(keys)) == 6


@pytest.mark.parametrize(("attempt", "delay"), [(1, 5), (2, 10), (3, 20), (9, 1280), (10, 1800), (30, 1800)])
def test_backoff_doubles_up_to_half_an_hour(attempt: int, delay: int) -> None:
    """5 s after the first failure, doubling, never more than 30 minutes."""
    assert backoff(attempt) == timedelta(seconds=delay)


def test_the_signature_is_the_hex_hmac_sha256_of_the_body() -> None:
    """Receivers verify with the shared secret over the exact bytes."""
    expected = hmac.new(b"k", b"{}", hashlib.sha256).hexdigest()
    assert signature(b"{}", "k") == f"sha256={expected}"
