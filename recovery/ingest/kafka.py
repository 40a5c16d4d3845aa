"""The service's Kafka producer and topic set-up (aiokafka), with driver errors wrapped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from recovery.errors import RecoveryError
from recovery.ingest.security import client_options, diagnose
from recovery.settings import KafkaSecuritySettings, KafkaSettings

log = logging.getLogger(__name__)


class KafkaUnavailableError(RecoveryError):
    """The broker could not be reached or refused a request."""

    retriable = True


async def ensure_topics(bootstrap_servers: str, kafka: KafkaSettings) -> None:
    """Create the input and output topics that do not exist yet (key = cart_id needs partitions)."""
    inputs = [t.name for t in kafka.topics.inputs()]
    names = [*inputs, kafka.topics.dead_letter.name, kafka.topics.callback_tasks.name, kafka.topics.messages.name]
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000, **client_options(kafka.security)
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        replicas = kafka.replication_factor if kafka.replication_factor > 0 else await _broker_replication(admin)
        missing = [NewTopic(name, kafka.partitions, replicas) for name in dict.fromkeys(names) if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica created them first
                await admin.create_topics(missing)
        warning = unequal_partitions_warning(await _partition_counts(admin, inputs))
        if warning:
            log.warning(warning)
    except KafkaError as exc:
        what = f"cannot set up topics on {bootstrap_servers}"
        raise (await _unavailable(what, exc, bootstrap_servers, kafka.security)) from exc
    finally:
        await admin.close()


def unequal_partitions_warning(counts: Mapping[str, int]) -> str | None:
    """Why the input topics' partition counts must agree, when they do not (``None`` when they do).

    A cart's events are keyed by cart on every input topic, and each consumer takes partition p of every topic
    (range assignment). That keeps one cart with one consumer only when the topics have as many partitions: with
    4 on ``cart-events`` and 8 on ``order-events`` a cart's order can land on another member than its cart
    events, and two members writing one cart at once can undo each other (an order's ``ordered_at`` lost).
    """
    if len(set(counts.values())) <= 1:
        return None
    listed = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    return (
        f"the input topics have unequal partition counts ({listed}): a cart's events can reach two consumers at "
        "once and one's write can undo the other's; give every input topic the same number of partitions "
        "(or run a single consumer worker)"
    )


async def _partition_counts(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> dict[str, int]:
    """Each existing topic of ``topics`` with its partition count."""
    described = await admin.describe_topics(list(dict.fromkeys(topics)))
    return {
        entry["topic"]: len(entry["partitions"])
        for entry in described
        if not entry.get("error_code") and entry.get("partitions")
    }


async def _broker_replication(admin: AIOKafkaAdminClient) -> int:
    """The broker's ``default.replication.factor`` (aiokafka's CreateTopics cannot send -1 for "the broker's").

    Topics created with 1 replica fail every ``acks=all`` send on a cluster with ``min.insync.replicas=2``
    (MSK's and Strimzi's defaults). Unreadable config: 3, or fewer on a cluster with fewer brokers.
    """
    cluster = await admin.describe_cluster()
    brokers = cluster.get("brokers") or []
    try:
        node = brokers[0]["node_id"]
        resource = ConfigResource(ConfigResourceType.BROKER, str(node), configs={"default.replication.factor": None})
        (response,) = await admin.describe_configs([resource])
        for _type, _name, configs in _resources(response):
            for entry in configs:
                if entry[0] == "default.replication.factor" and entry[1]:
                    return max(1, min(int(entry[1]), len(brokers)))
    except (KafkaError, LookupError, ValueError, TypeError):
        pass  # a broker without DescribeConfigs (the bundled one): the fallback below
    return max(1, min(3, len(brokers)))


def _resources(response: Any) -> list[tuple[Any, Any, list[tuple[Any, ...]]]]:
    """(type, name, config entries) of a DescribeConfigs response, any version."""
    found = []
    for resource in response.resources:
        # v0..v2: (error_code, error_message, resource_type, resource_name, config_entries)
        found.append((resource[2], resource[3], list(resource[4])))
    return found


async def _unavailable(
    what: str, exc: KafkaError, bootstrap_servers: str, security: KafkaSecuritySettings
) -> KafkaUnavailableError:
    """The error to raise, naming the cause (refused, untrusted certificate, rejected credentials) when found."""
    cause = await diagnose(bootstrap_servers, security) or str(exc)
    return KafkaUnavailableError(f"{what}: {cause}")


class Producer:
    """Publishes JSON or raw bytes; every send is awaited before the caller commits anything."""

    def __init__(self, bootstrap_servers: str, security: KafkaSecuritySettings | None = None) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._security = security or KafkaSecuritySettings()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            linger_ms=5,
            request_timeout_ms=15_000,
            **client_options(self._security),
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as exc:
            await self._producer.stop()  # a failed start leaves its client open
            what, servers = "cannot connect the producer", self._bootstrap_servers
            raise (await _unavailable(what, exc, servers, self._security)) from exc

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
