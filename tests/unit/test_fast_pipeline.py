"""The pipeline in milliseconds: real ingest, scheduler and dispatcher on SQLite, fake clock and channel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recovery.render.composer import PlainComposer
from recovery.settings import QuietHoursPolicy, Settings
from recovery.states import ChannelName
from recovery.testing import Pipeline, ScriptedChannel
from tests.harness import cart, customer, event

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
FLOWS = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 1h, channel: email, template: cart_reminder}
"""


@pytest.fixture
def email() -> ScriptedChannel:
    return ScriptedChannel(ChannelName.EMAIL)


@pytest.fixture
async def pipeline(tmp_path: Path, email: ScriptedChannel) -> AsyncIterator[Pipeline]:
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS, encoding="utf-8")
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'recovery.db'}"},
        abandonment={"idle_after": "30m"},
        flows_file=flows,
        guards={"quiet_hours": QuietHoursPolicy(channels=())},
    )
    channels = {ChannelName.EMAIL: email, ChannelName.SMS: ScriptedChannel(ChannelName.SMS)}
    async with Pipeline.start(settings=settings, channels=channels, composer=PlainComposer(), now=NOW) as started:
        yield started


async def test_an_idle_cart_gets_its_reminder_only_after_idle_time_and_step_delay(
    pipeline: Pipeline, email: ScriptedChannel
) -> None:
    """Nothing before 30 min idle + 1 h delay; exactly one reminder to the shopper after."""
    await pipeline.ingest(event("cart.updated", "cart-1", at=NOW, customer=customer(), cart=cart()))
    assert await pipeline.advance(timedelta(minutes=29)) == 0
    assert await pipeline.advance(timedelta(minutes=2)) == 1  # the cart is abandoned: one journey
    assert email.sent == []
    await pipeline.advance(timedelta(minutes=59))
    assert email.sent == []
    await pipeline.advance(timedelta(minutes=1))
    [message] = email.sent
    assert (message.cart_id, message.step, message.to) == ("cart-1", "reminder", "shopper1@example.com")
    await pipeline.advance(timedelta(days=1))
    assert len(email.sent) == 1, "a reminder goes out once"


async def test_an_order_before_abandonment_sends_nothing_while_an_unordered_cart_is_reminded(
    pipeline: Pipeline, email: ScriptedChannel
) -> None:
    """The ordered cart never starts a journey; the control cart proves the scheduler did run."""
    order = {"id": "o-1", "value": 189.8, "currency": "EUR"}
    await pipeline.ingest(
        event("cart.updated", "ordered", at=NOW, customer=customer(1), cart=cart()),
        event("cart.updated", "control", at=NOW, customer=customer(2), cart=cart()),
    )
    ordered = event("order.completed", "ordered", at=NOW + timedelta(minutes=5), order=order)
    await pipeline.ingest(ordered, topic="order")
    assert await pipeline.advance(timedelta(minutes=31)) == 1, "only the control cart is abandoned"
    await pipeline.advance(timedelta(hours=1))
    assert [m.cart_id for m in email.sent] == ["control"]


async def test_an_invalid_event_goes_to_the_dead_letters_with_its_reason(pipeline: Pipeline) -> None:
    """A cart event without a cart id is refused, kept byte for byte with a reason, and nothing else stops."""
    report = await pipeline.ingest({"id": "evt-bad", "type": "cart.updated", "occurred_at": NOW.isoformat()})
    assert (report.received, report.rejected, report.applied) == (1, 1, 0)
    [(topic, _key, payload)] = pipeline.dead_letters.sent
    assert topic == pipeline.settings.kafka.topics.dead_letter.name
    assert "cart_id" in json.dumps(json.loads(payload))
