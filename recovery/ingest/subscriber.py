"""The Kafka subscriber: a FastStream batch handler on the input topics that acks only after each commit.

Each batch goes to ``BatchProcessor`` (``batch.py``); poison is dead-lettered there. What fails here is the
environment (database or broker down): the batch is held unacked and retried with capped backoff.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from faststream.types import DecodedMessage

from recovery.backoff import Backoff, is_outage
from recovery.ingest.batch import BatchProcessor, BatchReport, Record
from recovery.ingest.platform_formats import utf8_headers
from recovery.ingest.security import faststream_security
from recovery.ops.tracing import kafka_middlewares
from recovery.settings import KafkaSettings

__all__ = ["IngestStats", "process_until_committed", "subscriber"]

log = logging.getLogger(__name__)


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


async def process_until_committed(
    processor: BatchProcessor, records: Sequence[Record], stop: asyncio.Event
) -> BatchReport | None:
    """Process the batch, retrying with capped backoff while the environment fails; None: stopped first."""
    backoff = Backoff("ingest (database or broker)")
    while True:
        try:
            report = await processor.process(records)
        except Exception as exc:
            # Poison was dead-lettered inside ``process``; what reaches here is the environment
            # failing (or a bug): hold the batch unacked and retry with capped backoff.
            if not is_outage(exc):
                log.exception("batch failed unexpectedly; retrying", extra={"records": len(records)})
            if stop.is_set():
                return None  # not acked: redelivered after restart
            await backoff.wait(exc, stop)
        else:
            backoff.succeeded()
            return report


def subscriber(
    bootstrap_servers: str,
    kafka: KafkaSettings,
    processor: BatchProcessor,
    stats: IngestStats,
    stop: asyncio.Event,
) -> KafkaBroker:
    """A FastStream batch subscriber on the four input topics, acking only after each commit."""
    broker = KafkaBroker(
        bootstrap_servers,
        logger=None,
        security=faststream_security(kafka.security),  # TLS / SASL as configured (kafka.security.*)
        middlewares=kafka_middlewares(),  # tracing spans when OpenTelemetry is on
    )

    @broker.subscriber(
        *[topic.name for topic in kafka.topics.inputs()],
        group_id=kafka.group_id,
        batch=True,
        max_records=kafka.batch_size,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        decoder=_no_decoding,  # each record is decoded inside the handler, so one bad record costs itself
        parser=_tolerant_parser,
    )
    async def ingest(msg: KafkaMessage) -> None:
        records: Any = msg.raw_message
        report = await process_until_committed(processor, records, stop)
        if report is None:
            return
        await msg.ack()
        stats.add(report)

    return broker


async def _tolerant_parser(
    records: tuple[Any, ...], original: Callable[[tuple[Any, ...]], Awaitable[StreamMessage[Any]]]
) -> StreamMessage[Any]:
    """FastStream decodes every header as UTF-8 before the handler: a bad header must not lose the batch."""
    try:
        return await original(records)
    except UnicodeDecodeError:
        # Only the undecodable headers go: every record keeps its bytes and its other headers (CloudEvents
        # binary mode reads ce_*); a record whose ce_* header went is dead-lettered naming that attribute.
        return await original(tuple(dataclasses.replace(record, headers=utf8_headers(record)) for record in records))


async def _no_decoding(_msg: StreamMessage[Any]) -> DecodedMessage:
    """FastStream's decoder parses JSON before the handler, where a failure loses the batch: skip it."""
    return None
