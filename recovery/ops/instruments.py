"""Counting wrappers put around the service's parts, so ingest and dispatch code stay free of metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from recovery.channels.base import Channel, Delivery, OutgoingMessage
from recovery.errors import OutcomeUnknownError, PermanentError, TransientError
from recovery.ingest.batch import BatchReport, DeadLetters
from recovery.ops.metrics import ServiceMetrics, reason_category
from recovery.ops.tracing import send_span
from recovery.states import ChannelName


class CountedDeadLetters:
    """The dead-letter producer, counting each published dead letter once by its reason's category."""

    def __init__(self, inner: DeadLetters, metrics: ServiceMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def send_many(self, topic: str, messages: Sequence[tuple[str | None, bytes]]) -> None:
        await self._inner.send_many(topic, messages)
        for _key, value in messages:  # counted after the broker has them: a failed send is retried, not counted
            try:
                reason = str(json.loads(value).get("reason", ""))
            except (ValueError, AttributeError):
                reason = ""
            self._metrics.dead_letters.labels(reason=reason_category(reason)).inc()


def count_batch(metrics: ServiceMetrics, report: BatchReport) -> None:
    """Count one committed batch's events by outcome."""
    metrics.events.labels(outcome="applied").inc(report.applied)
    metrics.events.labels(outcome="duplicate").inc(report.duplicates)
    metrics.events.labels(outcome="dead_lettered").inc(report.rejected)


class TimedChannel:
    """A channel whose sends are timed and counted by outcome (sent, transient, permanent, unknown, error)."""

    def __init__(self, inner: Channel, metrics: ServiceMetrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.name: ChannelName = inner.name

    async def send(self, message: OutgoingMessage) -> Delivery:
        channel = self.name.value
        started = time.perf_counter()
        with send_span(channel) as span:
            try:
                delivery = await self._inner.send(message)
                span["outcome"] = "sent"
                return delivery
            except TransientError:
                span["outcome"] = "transient"
                raise
            except PermanentError:
                span["outcome"] = "permanent"
                raise
            except OutcomeUnknownError:
                span["outcome"] = "unknown"
                raise
            finally:
                self._metrics.provider_latency.labels(channel=channel).observe(time.perf_counter() - started)
                self._metrics.sends.labels(channel=channel, outcome=span["outcome"]).inc()

    async def lookup(self, message: OutgoingMessage) -> Delivery | None:
        return await self._inner.lookup(message)

    async def aclose(self) -> None:
        await self._inner.aclose()
