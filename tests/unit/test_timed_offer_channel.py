"""An offer SMS sent by the callback channel is counted once (as a callback send), not also as an SMS."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import create_async_engine

from recovery.app.components import build_dispatcher
from recovery.channels.base import Channel, Delivery, OutgoingMessage
from recovery.clock import ManualClock
from recovery.ops.instruments import TimedChannel
from recovery.ops.metrics import ServiceMetrics
from recovery.render.composer import PlainComposer
from recovery.rules.flows import parse_flows
from recovery.settings import Settings
from recovery.states import ChannelName, StepMode


class Sms:
    name = ChannelName.SMS

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: OutgoingMessage) -> Delivery:
        self.sent.append(message.message_id)
        return Delivery(provider_id="SM1")

    async def lookup(self, message: OutgoingMessage) -> Delivery | None:
        return None

    async def aclose(self) -> None:
        return None


async def test_offer_sms_is_counted_once() -> None:
    metrics = ServiceMetrics(CollectorRegistry())
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    sms = Sms()
    channels: dict[ChannelName, Channel] = {ChannelName.SMS: sms}
    dispatcher = build_dispatcher(
        Settings(security={"link_secret": "x" * 40}),
        engine=engine,
        flows=parse_flows("flows: []\n"),
        channels=channels,
        composer=PlainComposer(),
        clock=ManualClock(datetime(2026, 1, 5, 10, tzinfo=UTC)),
        instrument=lambda channel: TimedChannel(channel, metrics),
    )
    offer = OutgoingMessage(
        message_id="m1",
        journey_id="j1",
        cart_id="c1",
        flow="f",
        step="call_me",
        channel=ChannelName.CALLBACK,
        to="+33612345678",
        text="On vous rappelle ?",
        mode=StepMode.OFFER,
    )
    try:
        await dispatcher._channels[ChannelName.CALLBACK].send(offer)
    finally:
        await engine.dispose()

    def sends(channel: str) -> float | None:
        return metrics.registry.get_sample_value("recovery_sends_total", {"channel": channel, "outcome": "sent"})

    assert sms.sent == ["m1"]
    assert sends("callback") == 1
    assert sends("sms") is None  # before: 1 here as well, the same provider call counted twice
