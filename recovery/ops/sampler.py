"""Gauges read periodically: due and overdue steps (one indexed query), consumer lag per partition."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.clock import Clock
from recovery.ops.metrics import ServiceMetrics
from recovery.states import StepStatus
from recovery.store.schema import steps

log = logging.getLogger(__name__)

OVERDUE_AFTER = timedelta(minutes=1)
SAMPLE_EVERY_S = 10.0


async def sample_steps(engine: AsyncEngine, metrics: ServiceMetrics, now: datetime) -> None:
    """Due, overdue and the oldest due step's age, from ``ix_steps_due`` (status, due_at)."""
    pending_due = (steps.c.status == StepStatus.PENDING.value) & (steps.c.due_at <= now)
    query = select(
        func.count().filter(pending_due),
        func.count().filter(pending_due & (steps.c.due_at <= now - OVERDUE_AFTER)),
        func.min(steps.c.due_at).filter(pending_due),
    ).where(steps.c.status == StepStatus.PENDING.value)
    async with engine.connect() as conn:
        due, overdue, oldest = (await conn.execute(query)).one()
    metrics.steps_due.set(due or 0)
    metrics.steps_overdue.set(overdue or 0)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    metrics.oldest_due_age.set(max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0)


async def sample_lag(consumers: Sequence[Any], metrics: ServiceMetrics) -> None:
    """High watermark minus committed offset (else position) for each partition assigned to this process."""
    seen: set[tuple[str, ...]] = set()
    for consumer in consumers:
        if consumer is None:
            continue
        for partition in consumer.assignment():
            high = consumer.highwater(partition)
            if high is None:
                continue  # no fetch answered yet for this partition
            done = await consumer.committed(partition)
            if done is None:
                done = await consumer.position(partition)
            labels: tuple[str, ...] = (partition.topic, str(partition.partition))
            metrics.consumer_lag.labels(*labels).set(max(high - done, 0))
            seen.add(labels)
    # Partitions that moved to another replica in a rebalance: their series go, not stay frozen.
    for labels in {
        tuple(sample.labels.values()) for metric in metrics.consumer_lag.collect() for sample in metric.samples
    } - seen:
        with contextlib.suppress(KeyError):
            metrics.consumer_lag.remove(*labels)


async def run_sampler(
    engine: AsyncEngine,
    metrics: ServiceMetrics,
    clock: Clock,
    stop: asyncio.Event,
    consumers: Callable[[], Sequence[Any]] = lambda: (),
    every_s: float | None = None,
    on_sample: Callable[[], None] = lambda: None,
) -> None:
    """Sample until ``stop``; a failed sample keeps the last values (metrics must not take the service down)."""
    while not stop.is_set():
        try:
            await sample_steps(engine, metrics, clock.now())
            await sample_lag(consumers(), metrics)
            on_sample()
        except Exception as exc:  # any failure: keep the last values, try again later
            log.debug("metrics sample failed", extra={"error": type(exc).__name__})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s or SAMPLE_EVERY_S)
