"""The input consumer's commit rule on a real broker (ingest/consumer.py): offsets are committed only after the
batch is written; a batch held by an outage or a stop is read again by the next owner; a rebalance waits for
the batch in flight, so the partitions' next owner does not apply it a second time.

A last test checks the group's assignment: partition p of every input topic to one member.

The processor here records what it was given (the real ``BatchProcessor`` runs behind this consumer in
test_pipeline, test_poison_and_outages and the crash tests, which drive ``recovery run``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.exc import OperationalError

from recovery.ingest.batch import BatchReport, DecodedBatch, Record
from recovery.ingest.consumer import IngestConsumer, IngestStats
from recovery.ingest.kafka import Producer, ensure_topics
from recovery.settings import KafkaSettings, Settings
from tests.harness import eventually

pytestmark = pytest.mark.timeout(120)


class Recording:
    """A processor that keeps each batch's records; it fails with an outage while ``down``, and waits on
    ``gate`` before returning when one is set."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, int, int]] = []
        self.down = False
        self.attempts = 0
        self.gate: asyncio.Event | None = None
        self.holding = asyncio.Event()

    async def decode(self, records: Sequence[Record]) -> DecodedBatch:
        return DecodedBatch(records=records)

    async def write(self, batch: DecodedBatch) -> BatchReport:
        records = batch.records
        self.attempts += 1
        if self.down:
            raise OperationalError("INSERT", None, ConnectionRefusedError("database down"))
        if self.gate is not None:
            self.holding.set()
            await self.gate.wait()
        self.applied += [(r.topic, r.partition, r.offset) for r in records]
        count = len(records)
        return BatchReport(
            received=count, rejected=0, duplicates=0, applied=count, journeys_started=0, journeys_ended=0
        )


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[KafkaSettings]:
    """Input topics of this test's own (2 partitions each) and a group of its own."""
    prefix = f"cons{uuid.uuid4().hex[:8]}"
    roles = ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages")
    settings = Settings(
        kafka={
            "topics": {role: {"name": f"{prefix}.{role}"} for role in roles},
            "partitions": 2,
            "group_id": f"{prefix}-group",
            "batch_size": 50,
        }
    )
    await ensure_topics(kafka_bootstrap, settings.kafka)
    yield settings.kafka


async def publish(bootstrap: str, kafka: KafkaSettings, count: int) -> None:
    producer = Producer(bootstrap)
    await producer.start()
    try:
        await producer.send_many(kafka.topics.cart.name, [(f"cart-{i}", b"{}") for i in range(count)])
    finally:
        await producer.stop()


async def committed(bootstrap: str, kafka: KafkaSettings) -> int:
    """How many of the cart topic's records the group has committed, over its partitions."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=kafka.group_id, enable_auto_commit=False)
    await reader.start()
    try:
        total = 0
        for partition in range(kafka.partitions):
            total += await reader.committed(TopicPartition(kafka.topics.cart.name, partition)) or 0
        return total
    finally:
        await reader.stop()


async def started(bootstrap: str, kafka: KafkaSettings, processor: Recording) -> tuple[IngestConsumer, asyncio.Event]:
    stop = asyncio.Event()
    consumer = IngestConsumer(bootstrap, kafka, processor, IngestStats(), stop)
    await consumer.start()
    return consumer, stop


@contextlib.asynccontextmanager
async def consuming(bootstrap: str, kafka: KafkaSettings, processor: Recording) -> AsyncIterator[None]:
    """A consumer of the group running for the block, stopped as the service stops it."""
    consumer, stop = await started(bootstrap, kafka, processor)
    try:
        yield
    finally:
        stop.set()
        await consumer.stop()


async def test_offsets_are_committed_after_the_write(kafka_bootstrap: str, kafka: KafkaSettings) -> None:
    """Every record is handed over once, and the group's offsets reach the end of each partition."""
    processor = Recording()
    async with consuming(kafka_bootstrap, kafka, processor):
        await publish(kafka_bootstrap, kafka, 120)
        await eventually(lambda: len(processor.applied) >= 120, timeout=30)
    assert len(set(processor.applied)) == len(processor.applied) == 120
    assert await committed(kafka_bootstrap, kafka) == 120


async def test_a_batch_held_by_an_outage_is_not_committed_and_is_written_once_it_ends(
    kafka_bootstrap: str, kafka: KafkaSettings
) -> None:
    """While the database is down nothing is committed; when it is back, the held batch is written, then committed."""
    processor = Recording()
    processor.down = True
    async with consuming(kafka_bootstrap, kafka, processor):
        await publish(kafka_bootstrap, kafka, 10)
        await eventually(lambda: processor.attempts >= 2, timeout=30)  # the batch was tried and is being retried
        assert await committed(kafka_bootstrap, kafka) == 0
        processor.down = False
        await eventually(lambda: len(processor.applied) >= 10, timeout=30)
    assert await committed(kafka_bootstrap, kafka) == 10
    assert len(processor.applied) == 10


async def test_a_batch_held_when_the_service_stops_is_read_again_by_the_next_consumer(
    kafka_bootstrap: str, kafka: KafkaSettings
) -> None:
    """Stopped during an outage: nothing committed, and the next member of the group gets every record."""
    failing = Recording()
    failing.down = True
    async with consuming(kafka_bootstrap, kafka, failing):
        await publish(kafka_bootstrap, kafka, 10)
        await eventually(lambda: failing.attempts >= 1, timeout=30)
    assert await committed(kafka_bootstrap, kafka) == 0

    after = Recording()
    async with consuming(kafka_bootstrap, kafka, after):
        await eventually(lambda: len(after.applied) >= 10, timeout=30)
    assert len(set(after.applied)) == 10


async def test_a_rebalance_waits_for_the_batch_in_flight(
    kafka_bootstrap: str, kafka: KafkaSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """A second member joins while the first is writing a batch: that batch is committed before its partitions
    move, so no record is handed to both members."""
    caplog.set_level(logging.INFO, logger="recovery.ingest.consumer")
    first = Recording()
    first.gate = asyncio.Event()
    consumer_a, stop_a = await started(kafka_bootstrap, kafka, first)
    second = Recording()
    consumer_b: IngestConsumer | None = None
    stop_b = asyncio.Event()
    try:
        await publish(kafka_bootstrap, kafka, 40)
        await eventually(lambda: first.holding.is_set(), timeout=30)
        joining = asyncio.create_task(started(kafka_bootstrap, kafka, second))  # its start waits for the join
        await eventually(
            lambda: "finishing the batch in flight" in caplog.text, timeout=30
        )  # A's revocation waits for its batch
        # Were A's partitions handed over now, B would read A's batch again within these seconds.
        with contextlib.suppress(AssertionError):
            await eventually(lambda: bool(second.applied), timeout=10.0)
        assert not first.applied and not joining.done()
        first.gate.set()
        consumer_b, stop_b = await joining
        await publish(kafka_bootstrap, kafka, 40)
        await eventually(lambda: len(first.applied) + len(second.applied) >= 80, timeout=30)
    finally:
        first.gate.set()
        stop_a.set()
        stop_b.set()
        await consumer_a.stop()
        if consumer_b is not None:
            await consumer_b.stop()
    both = first.applied + second.applied
    assert len(both) == len(set(both)) == 80, "a record was handed to both members"
    assert await committed(kafka_bootstrap, kafka) == 80


async def test_each_member_gets_the_same_partitions_of_every_input_topic(
    kafka_bootstrap: str, kafka: KafkaSettings
) -> None:
    """A cart's events are keyed by cart on all four topics: partition p of each must go to one member, or two
    members would write one cart at once. Three members on two partitions: round-robin split them."""
    stops = [asyncio.Event() for _ in range(3)]
    members = [IngestConsumer(kafka_bootstrap, kafka, Recording(), IngestStats(), stop) for stop in stops]
    inputs = {topic.name for topic in kafka.topics.inputs()}

    def copartitioned() -> bool:
        owned = [member.consumer.assignment() for member in members]
        if sum(len(parts) for parts in owned) != len(inputs) * kafka.partitions:
            return False  # the group is still settling
        return all(
            len({frozenset(tp.partition for tp in parts if tp.topic == topic) for topic in inputs}) == 1
            for parts in owned
        )

    for member in members:
        await member.start()
    try:
        await eventually(copartitioned, timeout=60)
    finally:
        for stop, member in zip(stops, members, strict=True):
            stop.set()
            await member.stop()
