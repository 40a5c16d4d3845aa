"""Topic set-up at start (ingest/kafka.ensure_topics) on a real broker: missing topics are created with
``kafka.partitions``; input topics created elsewhere with unequal partition counts are named in a warning,
since one cart's events could then reach two consumers at once."""

from __future__ import annotations

import logging
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from recovery.ingest.kafka import ensure_topics
from recovery.settings import Settings

pytestmark = pytest.mark.timeout(60)

ROLES = ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages")


def settings_for(prefix: str) -> Settings:
    return Settings(kafka={"topics": {role: {"name": f"{prefix}.{role}"} for role in ROLES}, "partitions": 3})


async def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {entry["topic"]: len(entry["partitions"]) for entry in await admin.describe_topics(names)}
    finally:
        await admin.close()


async def test_missing_topics_are_created_with_the_configured_partitions_and_no_warning(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"setup{uuid.uuid4().hex[:8]}"
    settings = settings_for(prefix)
    names = [f"{prefix}.{role}" for role in ROLES]
    with caplog.at_level(logging.WARNING, logger="recovery.ingest.kafka"):
        await ensure_topics(kafka_bootstrap, settings.kafka)
    assert await partition_counts(kafka_bootstrap, names) == dict.fromkeys(names, 3)
    assert not [r for r in caplog.records if "partition" in r.getMessage()]


async def test_input_topics_with_unequal_partitions_are_named_in_a_warning(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"setup{uuid.uuid4().hex[:8]}"
    settings = settings_for(prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # the platform made its order topic with more partitions than the cart topic
        await admin.create_topics([NewTopic(f"{prefix}.order", 6, 1), NewTopic(f"{prefix}.cart", 2, 1)])
    finally:
        await admin.close()
    with caplog.at_level(logging.WARNING, logger="recovery.ingest.kafka"):
        await ensure_topics(kafka_bootstrap, settings.kafka)
    (warning,) = [r.getMessage() for r in caplog.records if "unequal partition counts" in r.getMessage()]
    assert f"{prefix}.cart 2" in warning and f"{prefix}.order 6" in warning and f"{prefix}.payment 3" in warning
    # the service still starts and creates what was missing; it does not touch the platform's topics
    counts = await partition_counts(kafka_bootstrap, [f"{prefix}.cart", f"{prefix}.order", f"{prefix}.consent"])
    assert counts == {f"{prefix}.cart": 2, f"{prefix}.order": 6, f"{prefix}.consent": 3}
