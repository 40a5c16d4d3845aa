"""The Kafka subscriber (ingest/subscriber.py) in FastStream's TestKafkaBroker: no broker, the real ingest on SQLite."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from recovery.app.service import Service
from recovery.ingest.batch import gc_paused
from recovery.ingest.subscriber import subscriber
from recovery.render.composer import PlainComposer
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.testing import Pipeline, ScriptedChannel
from tests.harness import cart, customer, event

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


@pytest.fixture
async def wired(tmp_path: Path) -> AsyncIterator[tuple[Service, Pipeline, KafkaBroker]]:
    flows = tmp_path / "flows.yaml"
    flows.write_text("flows: []\n", encoding="utf-8")
    settings = Settings(database={"url": f"sqlite+aiosqlite:///{tmp_path / 'recovery.db'}"}, flows_file=flows)
    channels = {name: ScriptedChannel(name) for name in (ChannelName.EMAIL, ChannelName.SMS)}
    async with Pipeline.start(settings=settings, channels=channels, composer=PlainComposer(), now=NOW) as pipeline:
        service = Service(settings, channels=channels, composer=PlainComposer())
        # TestKafkaBroker never connects: the address is only a name.
        broker = subscriber("in-memory:9092", settings.kafka, pipeline.processor, service.stats, asyncio.Event())
        async with TestKafkaBroker(broker) as test_broker:
            yield service, pipeline, test_broker


async def publish(broker: KafkaBroker, service: Service, message: dict[str, Any] | bytes) -> None:
    await broker.publish(message, topic=service.settings.kafka.topics.cart.name)


async def test_a_valid_event_is_applied_and_counted(wired: tuple[Service, Pipeline, KafkaBroker]) -> None:
    """One record in, one event applied: the handler hands the batch to ingest and counts its report."""
    service, _, broker = wired
    await publish(broker, service, event("cart.updated", "cart-1", at=NOW, customer=customer(), cart=cart()))
    assert (service.stats.received, service.stats.applied, service.stats.rejected) == (1, 1, 0)


async def test_a_redelivered_event_is_a_duplicate_not_a_second_application(
    wired: tuple[Service, Pipeline, KafkaBroker],
) -> None:
    """The same event id twice (Kafka redelivery) is applied once."""
    service, _, broker = wired
    once = event("cart.updated", "cart-1", at=NOW, customer=customer(), cart=cart())
    await publish(broker, service, once)
    await publish(broker, service, once)
    assert (service.stats.applied, service.stats.duplicates) == (1, 1)


async def test_bytes_that_are_not_json_go_to_the_dead_letters(wired: tuple[Service, Pipeline, KafkaBroker]) -> None:
    """Unparseable bytes are refused with a reason instead of stopping the consumer."""
    service, pipeline, broker = wired
    await publish(broker, service, b"{not json")
    assert (service.stats.rejected, service.stats.applied) == (1, 0)
    [(topic, _key, payload)] = pipeline.dead_letters.sent
    assert topic == service.settings.kafka.topics.dead_letter.name and b"not JSON" in payload


async def test_garbage_collection_resumes_after_each_batch(wired: tuple[Service, Pipeline, KafkaBroker]) -> None:
    """Ingest pauses the cyclic collector during a batch only: left off, the process would grow forever."""
    service, _, broker = wired
    await publish(broker, service, event("cart.updated", "cart-1", at=NOW, customer=customer(), cart=cart()))
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("the database went away mid-batch")
    assert gc.isenabled()
