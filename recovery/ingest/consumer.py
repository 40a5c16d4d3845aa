"""The input topics' consumer: aiokafka directly, each batch written before its partitions' offsets are committed.

Each batch of records from ``getmany`` goes to ``BatchProcessor``: batch N+1 is fetched and decoded while batch N
is written. FastStream stays the framework for the AsyncAPI document (``asyncapi.py`` describes these topics).

The commit rule: a batch's offsets are committed only once ``write`` has returned, that is once its effects
are committed in the database; a batch held by an outage is never committed, and a stop leaves it for the
next owner. When partitions are taken away in a rebalance, the batches in flight are finished and committed
first (waiting at most ``REVOKE_WAIT_S``), so the next owner does not apply them a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord

from recovery.backoff import Backoff, is_outage
from recovery.ingest.batch import BatchReport, DecodedBatch, Record
from recovery.ingest.collector import LoadCollector
from recovery.ingest.kafka import KafkaUnavailableError
from recovery.ingest.security import client_options
from recovery.ops.tracing import batch_span
from recovery.settings import KafkaSettings

__all__ = ["REVOKE_WAIT_S", "IngestConsumer", "IngestStats", "next_offsets", "process_until_committed"]

log = logging.getLogger(__name__)

REVOKE_WAIT_S = 30.0  # a batch held longer (database down) is left to the next owner: redelivered, deduplicated
FETCH_WAIT_MS = 500  # getmany's longest wait when nothing is there: how soon a stop is noticed while idle


class Processor(Protocol):
    """What a batch of records goes to (``BatchProcessor``): ``decode`` does no I/O; when ``write`` returns, the
    batch's effects are committed."""

    async def decode(self, records: Sequence[Record]) -> DecodedBatch: ...

    async def write(self, batch: DecodedBatch) -> BatchReport: ...


@dataclass
class IngestStats:
    """Running totals, for the demo's progress and the logs."""

    received: int = 0
    rejected: int = 0
    duplicates: int = 0
    applied: int = 0
    batches: int = 0
    last: BatchReport | None = field(default=None, repr=False)
    listener: Callable[[BatchReport], None] | None = field(default=None, repr=False)  # e.g. the metrics

    def add(self, report: BatchReport) -> None:
        """Count one committed batch."""
        self.received += report.received
        self.rejected += report.rejected
        self.duplicates += report.duplicates
        self.applied += report.applied
        self.batches += 1
        self.last = report
        if self.listener is not None:
            self.listener(report)


async def process_until_committed(processor: Processor, batch: DecodedBatch, stop: asyncio.Event) -> BatchReport | None:
    """Write the batch, retrying with capped backoff while the environment fails; None: stopped first."""
    backoff = Backoff("ingest (database or broker)")
    while True:
        try:
            report = await processor.write(batch)
        except Exception as exc:
            # Poison was dead-lettered inside ``write``; what reaches here is the environment
            # failing (or a bug): hold the batch uncommitted and retry with capped backoff.
            if not is_outage(exc):
                log.exception("batch failed unexpectedly; retrying", extra={"records": len(batch.records)})
            if stop.is_set():
                return None  # not committed: redelivered after restart
            await backoff.wait(exc, stop)
        else:
            backoff.succeeded()
            return report


def next_offsets(records: Iterable[Record]) -> dict[TopicPartition, int]:
    """The offsets to commit once ``records`` are written: the next one to read, per partition."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
    return offsets


class _InFlight:
    """How many fetched batches are not committed yet (one being written, the next being decoded); the garbage
    collector is paused while there are any (``collector.py``)."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._collector = LoadCollector()

    def add(self) -> None:
        if not self.count:
            self._collector.busy()
        self.count += 1
        self._idle.clear()

    def done(self) -> None:
        self.count -= 1
        self._collector.batch_done()
        if not self.count:
            self._idle.set()
            self._collector.idle()

    async def idle(self) -> None:
        await self._idle.wait()


class _FinishBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no annotations here
    """Partitions taken away wait for the batches in flight to be written and committed (bounded)."""

    def __init__(self, in_flight: _InFlight) -> None:
        self._in_flight = in_flight

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        if self._in_flight.count:
            log.info("rebalance: finishing the batch in flight before %d partitions move", len(revoked))
        try:
            async with asyncio.timeout(REVOKE_WAIT_S):
                await self._in_flight.idle()
        except TimeoutError:
            log.warning("rebalance while a batch is held: its records go to the next owner and are deduplicated")

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("input partitions assigned: %d", len(assigned), extra={"partitions": len(assigned)})


class IngestConsumer:
    """One member of the consumer group on the input topics; ``start``, then ``stop`` once ``stop`` is set."""

    def __init__(
        self,
        bootstrap_servers: str,
        kafka: KafkaSettings,
        processor: Processor,
        stats: IngestStats,
        stop: asyncio.Event,
    ) -> None:
        self._kafka = kafka
        self._processor = processor
        self._stats = stats
        self._stop = stop
        self._in_flight = _InFlight()
        options = client_options(kafka.security)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=kafka.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=kafka.batch_size,
            # Partition p of every input topic to the same member: a cart's events are keyed by cart on all four
            # topics, so its cart events and its order land on the same partition number. The default round-robin
            # split them between members whenever the member count did not divide the partitions (3 consumers, or
            # 2 replicas x 4 workers on 4 partitions): two members then loaded and rewrote one cart at once, and
            # the later write could undo the other (an order's ordered_at lost, a bought cart chased). Range gives
            # each member the same partition numbers of every topic of the same partition count. Round-robin
            # stays second so that a group mid-upgrade still agrees on a protocol.
            partition_assignment_strategy=(RangePartitionAssignor, RoundRobinPartitionAssignor),
            **options,
        )
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5_000, **options)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Join the group and start consuming in a task of its own."""
        topics = [topic.name for topic in self._kafka.topics.inputs()]
        self.consumer.subscribe(topics, listener=_FinishBeforeRevoke(self._in_flight))
        try:
            await self.consumer.start()
            await self._admin.start()
        except KafkaError as exc:
            await self.stop()
            raise KafkaUnavailableError(f"cannot start the input consumer: {exc}") from exc
        self._task = asyncio.create_task(self._consume(), name="ingest-consumer")

    async def stop(self) -> None:
        """Stop consuming: a batch being written finishes (or, held by an outage, is left uncommitted)."""
        if self._task is not None:
            if not self._in_flight.count:
                self._task.cancel()  # waiting for records: nothing of ours is in flight
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(KafkaError):
            await self.consumer.stop()
        with contextlib.suppress(KafkaError):
            await self._admin.close()

    async def ping(self, within_s: float) -> bool:
        """Whether the broker answers within ``within_s`` seconds (readiness)."""
        try:
            async with asyncio.timeout(within_s):
                await self._admin.describe_cluster()
        except (TimeoutError, KafkaError, OSError):
            return False
        return True

    async def _consume(self) -> None:
        """Fetch, decode, write, commit; batch N+1 is fetched and decoded while batch N is written (its decode
        runs in slices between the write's statements), and written only once N is committed."""
        backoff = Backoff("input consumer (broker)")
        writing: asyncio.Task[None] | None = None
        try:
            while not self._stop.is_set():
                records = await self._fetch(backoff)
                if not records:
                    continue
                self._in_flight.add()
                try:
                    decoded = await self._processor.decode(records)
                    if writing is not None:
                        await writing
                except BaseException:
                    self._in_flight.done()
                    raise
                writing = asyncio.create_task(self._write_then_commit(decoded))
        finally:
            if writing is not None:
                await writing

    async def _fetch(self, backoff: Backoff) -> list[ConsumerRecord[bytes, bytes]]:
        """The next records (none after ``FETCH_WAIT_MS`` with nothing new, or while the broker fails)."""
        try:
            batch = await self.consumer.getmany(timeout_ms=FETCH_WAIT_MS, max_records=self._kafka.batch_size)
        except (KafkaError, IllegalStateError) as exc:  # e.g. authorization refused: wait, it may be granted
            await backoff.wait(exc, self._stop)
            return []
        backoff.succeeded()
        return [record for part in batch.values() for record in part]

    async def _write_then_commit(self, batch: DecodedBatch) -> None:
        try:
            with batch_span(batch.records):
                report = await process_until_committed(self._processor, batch, self._stop)
            if report is None:
                return  # stopped while the environment failed: not committed, redelivered to the next owner
            await self._commit(next_offsets(batch.records))
            self._stats.add(report)
        finally:
            self._in_flight.done()

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit after the write. A failed commit loses nothing: the next batch's commit covers these
        partitions, and a batch read again is recognised by its event ids."""
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            log.warning("offsets not committed: the partitions moved to another consumer (its reads are deduplicated)")
        except (KafkaError, IllegalStateError) as exc:
            log.warning("offsets not committed (%s): covered by the next commit", type(exc).__name__)
