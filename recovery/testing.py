"""In-memory fakes for tests that prove behaviour in milliseconds: no broker, no provider, no wall clock.

``Pipeline`` wires the real ingest, scheduler and dispatcher to a SQLite file, a ``ManualClock`` and
``ScriptedChannel``s: time moves only when a test says so and every send is recorded. The real-broker and
real-provider tiers stay for the contracts (Kafka offsets, SMTP, Twilio).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from recovery.app.components import build_dispatcher, build_processor, build_scheduler
from recovery.app.policies import address_keys
from recovery.channels.base import Channel, Delivery, OutgoingMessage
from recovery.clock import ManualClock
from recovery.consent.authority import AddressKeys
from recovery.errors import RecoveryError
from recovery.ingest.batch import BatchProcessor, BatchReport
from recovery.rules.flows import load_flows
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.steps.rendering import Composer
from recovery.steps.scheduler import Scheduler
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head

__all__ = ["FakeRecord", "ManualClock", "Pipeline", "RecordedSleep", "RecordingDeadLetters", "ScriptedChannel"]

_TEST_KEY = b"recovery.testing address key, never used by the service"


@dataclass(kw_only=True)  # not frozen: the Record protocol declares plain (writable) attributes
class FakeRecord:
    """A Kafka consumer record as ingest reads it (the ``Record`` protocol)."""

    topic: str
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class RecordingDeadLetters:
    """Dead letters kept in a list instead of a topic."""

    sent: list[tuple[str, str | None, bytes]] = field(default_factory=list)

    async def send_many(self, topic: str, messages: Sequence[tuple[str | None, bytes]]) -> None:
        self.sent.extend((topic, key, value) for key, value in messages)


class ScriptedChannel:
    """A channel that raises the scripted errors, in order, then delivers; it keeps what it sent."""

    def __init__(self, name: ChannelName = ChannelName.EMAIL, *errors: RecoveryError) -> None:
        self.name = name
        self._errors = list(errors)
        self.calls = 0
        self.sent: list[OutgoingMessage] = []

    async def send(self, message: OutgoingMessage) -> Delivery:
        self.calls += 1
        if self._errors:
            raise self._errors.pop(0)
        self.sent.append(message)
        return Delivery(provider_id=f"fake-{self.calls}")

    async def lookup(self, message: OutgoingMessage) -> Delivery | None:
        return next((Delivery(provider_id="fake") for m in self.sent if m.message_id == message.message_id), None)

    async def aclose(self) -> None:
        return None


class RecordedSleep:
    """An injected ``sleep`` that writes waits down instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class Pipeline:
    """Ingest, scheduler and dispatcher over one database, driven by hand: ``ingest`` then ``advance``."""

    settings: Settings
    clock: ManualClock
    processor: BatchProcessor
    scheduler: Scheduler
    dead_letters: RecordingDeadLetters
    _offset: int = 0

    async def ingest(self, *events: Mapping[str, Any], topic: str = "cart") -> BatchReport:
        """Apply events as one batch read from the input topic of role ``topic``."""
        name = getattr(self.settings.kafka.topics, topic).name
        records = []
        for event in events:
            self._offset += 1
            key = str(event.get("cart_id", "")).encode() or None
            records.append(FakeRecord(topic=name, offset=self._offset, key=key, value=json.dumps(event).encode()))
        return await self.processor.process(records)

    async def advance(self, delta: timedelta) -> int:
        """Move the clock, then run the scheduler's real loop until nothing is due; returns the work done."""
        self.clock.advance(delta)
        return await self.scheduler.run_until_idle()

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        *,
        settings: Settings,
        channels: Mapping[ChannelName, Channel],
        composer: Composer,
        now: datetime,
    ) -> AsyncIterator[Pipeline]:
        """A migrated database at ``settings.database.url`` and the real components around it."""
        engine = create_engine(settings.database.url)
        try:
            await upgrade_to_head(engine)
            flows = load_flows(Path(settings.flows_file))
            clock, dead = ManualClock(now), RecordingDeadLetters()
            # Tests without a link secret still hash addresses with a key (a fixed one: nothing here is real).
            addresses = address_keys(settings) if settings.security.link_secret else AddressKeys((_TEST_KEY,))
            # Built by the service's own functions: the same retries, callback channel, rates and calling hours.
            processor = build_processor(
                settings, engine=engine, flows=flows, clock=clock, dead_letters=dead, addresses=addresses
            )
            dispatcher = build_dispatcher(
                settings,
                engine=engine,
                flows=flows,
                channels=channels,
                composer=composer,
                clock=clock,
                addresses=addresses,
            )
            scheduler = build_scheduler(settings, engine=engine, flows=flows, dispatcher=dispatcher, clock=clock)
            yield cls(settings=settings, clock=clock, processor=processor, scheduler=scheduler, dead_letters=dead)
        finally:
            await engine.dispose()
