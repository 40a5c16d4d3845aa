"""The service's Kafka producer and topic set-up (aiokafka), with driver errors wrapped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from recovery.errors import RecoveryError
from recovery.settings import KafkaSettings


class KafkaUnavailableError(RecoveryError):
    """The broker could not be reached or refused a request."""

    retriable = True


async def ensure_topics(bootstrap_servers: str, kafka: KafkaSettings) -> None:
    """Create the input and output topics that do not exist yet (key = cart_id needs partitions)."""
    names = [t.name for t in kafka.topics.inputs()] + [
        kafka.topics.dead_letter.name,
        kafka.topics.callback_tasks.name,
        kafka.topics.messages.name,
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, kafka.partitions, 1) for name in dict.fromkeys(names) if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica created them first
                await admin.create_topics(missing)
    except KafkaError as exc:
        raise KafkaUnavailableError(f"cannot set up topics on {bootstrap_servers}: {exc}") from exc
    finally:
        await admin.close()


class Producer:
    """Publishes JSON or raw bytes; every send is awaited before the caller commits anything."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5, request_timeout_ms=15_000
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as exc:
            raise KafkaUnavailableError(f"cannot connect the producer: {exc}") from exc

    async def stop(self) -> None:
        await self._producer.stop()

    async def send_many(self, topic: str, messages: Sequence[tuple[str | None, bytes]]) -> None:
        """Send (key, value) pairs to ``topic`` and wait until the broker has them all."""
        try:
            futures = [
                await self._producer.send(topic, value, key=key.encode() if key is not None else None)
                for key, value in messages
            ]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise KafkaUnavailableError(f"cannot publish to {topic}: {exc}") from exc
