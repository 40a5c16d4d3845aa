"""A payment failure that arrives before the cart event naming the shopper still reaches the shopper.

Kafka keeps order within one topic's partition only: a platform's ``cart.updated`` on ``cart-events`` and the
``payment.failed`` it publishes right after on ``payment-events`` can be applied in the other order.
"""

from __future__ import annotations

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
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 2m, channel: sms, template: payment_failed}
"""
PAYMENT = {"reason": "card_declined", "method": "card", "amount": 189.8}


@pytest.fixture
def sms() -> ScriptedChannel:
    return ScriptedChannel(ChannelName.SMS)


@pytest.fixture
async def pipeline(tmp_path: Path, sms: ScriptedChannel) -> AsyncIterator[Pipeline]:
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS, encoding="utf-8")
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'recovery.db'}"},
        flows_file=flows,
        guards={"quiet_hours": QuietHoursPolicy(channels=())},
    )
    channels = {ChannelName.EMAIL: ScriptedChannel(ChannelName.EMAIL), ChannelName.SMS: sms}
    async with Pipeline.start(settings=settings, channels=channels, composer=PlainComposer(), now=NOW) as started:
        yield started


async def test_the_payment_failure_first_then_the_cart_event_sends_the_sms_to_the_shopper(
    pipeline: Pipeline, sms: ScriptedChannel
) -> None:
    shopper = customer(1, sms=True)
    await pipeline.ingest(event("payment.failed", "cart-1", at=NOW, payment=PAYMENT), topic="payment")
    await pipeline.ingest(event("cart.updated", "cart-1", at=NOW - timedelta(seconds=5), customer=shopper, cart=cart()))
    await pipeline.advance(timedelta(minutes=3))
    [message] = sms.sent
    assert (message.cart_id, message.step, message.to) == ("cart-1", "retry_payment", "+33612345678")


async def test_a_guest_who_never_names_themselves_gets_nothing(pipeline: Pipeline, sms: ScriptedChannel) -> None:
    """The control: without a customer on any event there is no contact and no consent, so no SMS."""
    await pipeline.ingest(event("payment.failed", "cart-2", at=NOW, payment=PAYMENT), topic="payment")
    await pipeline.ingest(event("cart.updated", "cart-2", at=NOW, cart=cart()))
    await pipeline.advance(timedelta(minutes=3))
    assert sms.sent == []


async def test_a_shopper_without_sms_consent_is_not_texted_after_the_late_cart_event(
    pipeline: Pipeline, sms: ScriptedChannel
) -> None:
    await pipeline.ingest(event("payment.failed", "cart-3", at=NOW, payment=PAYMENT), topic="payment")
    await pipeline.ingest(event("cart.updated", "cart-3", at=NOW, customer=customer(3, sms=False), cart=cart()))
    await pipeline.advance(timedelta(minutes=3))
    assert sms.sent == []
