"""The sender pipeline on PostgreSQL: two replicas share a burst exactly once; NOTIFY wakes the other one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.testing import ScriptedChannel
from tests.harness import failed_payment
from tests.unit.test_scheduler_pipeline import (
    NOW,
    GatedChannel,
    idle_observed,
    pipeline_with,
    running,
    sent_count,
    settings_for,
)


def on_postgres(tmp_path: Path, url: str, *, concurrency: int) -> Settings:
    return settings_for(tmp_path, concurrency=concurrency, url=url)


async def test_two_replicas_with_many_senders_send_a_burst_exactly_once(tmp_path: Path, postgres_url: str) -> None:
    one, two = ScriptedChannel(ChannelName.EMAIL), ScriptedChannel(ChannelName.EMAIL)
    settings = on_postgres(tmp_path, postgres_url, concurrency=16)
    async with pipeline_with(settings, one) as first, pipeline_with(settings, two) as second:
        await first.ingest(*[failed_payment(i, at=NOW) for i in range(200)], topic="payment")
        async with running(first), running(second):

            async def all_sent() -> None:
                while len(one.sent) + len(two.sent) < 200:  # noqa: ASYNC110 - the schedulers fill them
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(all_sent(), 60)
    carts = [m.cart_id for m in one.sent + two.sent]
    assert sorted(carts) == sorted(f"cart-{i}" for i in range(200)), "every cart once, none twice"


async def test_a_due_step_created_by_another_replica_wakes_this_one(tmp_path: Path, postgres_url: str) -> None:
    email = GatedChannel()
    email.gate.set()
    settings = on_postgres(tmp_path, postgres_url, concurrency=4)
    ingest_only = ScriptedChannel(ChannelName.EMAIL)
    async with (
        pipeline_with(settings, email) as sender,
        pipeline_with(settings, ingest_only) as other,
        idle_observed(sender) as until_idle,
        running(sender),
    ):
        await until_idle()
        # Created through the other replica's engine: only the database's NOTIFY can reach this one
        # before its hour-long poll.
        await other.ingest(failed_payment(1, at=NOW), topic="payment")
        await sent_count(email, 1)
    assert [m.cart_id for m in email.sent] == ["cart-1"]
    assert ingest_only.sent == []
