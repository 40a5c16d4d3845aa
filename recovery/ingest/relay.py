"""Publishes the transactional outbox to Kafka: ``recovery.messages``, dead letters, callback tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.backoff import Backoff, is_outage
from recovery.ingest.kafka import Producer
from recovery.settings import TopicsSettings
from recovery.store import outbox

log = logging.getLogger(__name__)


class OutboxRelay:
    """Moves outbox rows to their topics, oldest first; a row is deleted only once published."""

    def __init__(self, *, engine: AsyncEngine, producer: Producer, topics: TopicsSettings, batch: int = 500) -> None:
        self._engine = engine
        self._producer = producer
        self._topics = topics
        self._batch = batch

    async def run(self, stop: asyncio.Event, interval: float = 0.1) -> None:
        """Relay until ``stop`` is set, then once more so nothing committed stays behind."""
        backoff = Backoff("outbox relay (database or broker)")
        while not stop.is_set():
            try:
                moved = await self.relay_once()
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("outbox relay failed; retrying")
                await backoff.wait(exc, stop)
                continue
            backoff.succeeded()
            if not moved:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
        with contextlib.suppress(Exception):
            while await self.relay_once():
                pass

    async def relay_once(self) -> int:
        """Publish one batch; return how many events went out."""
        async with self._engine.begin() as conn:
            rows = await outbox.take(conn, self._batch)
            if not rows:
                return 0
            by_topic: dict[str, list[tuple[str | None, bytes]]] = defaultdict(list)
            for row in rows:
                topic = getattr(self._topics, row.topic_role).name
                by_topic[topic].append((row.key, row.payload.encode("utf-8")))
            for topic, messages in by_topic.items():
                await self._producer.send_many(topic, messages)
            await outbox.remove(conn, [row.id for row in rows])
        return len(rows)
