"""Hypothesis through the real broker: generated malformed events mixed with valid ones on one key."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import eventually, running_service, service_settings
from tests.unit.test_poison_input import BASE, _breakers

pytestmark = [pytest.mark.kafka]


def valid_event() -> bytes:
    return json.dumps({**BASE, "id": f"evt-{uuid.uuid4().hex}", "cart_id": "fuzz-cart"}).encode()


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.none(), _breakers), min_size=4, max_size=25))
def test_every_valid_event_is_applied_and_every_malformed_one_dead_lettered(
    kafka_bootstrap: str, tmp_path: Path, mixed: list[bytes | None]
) -> None:
    """``None`` marks a valid event; the others are malformed bytes, all published on the same key in order."""
    records = [valid_event() if item is None else item for item in mixed]
    valid = sum(item is None for item in mixed)
    workdir = tmp_path / uuid.uuid4().hex
    workdir.mkdir()
    database = f"sqlite+aiosqlite:///{workdir / 'db.sqlite'}"

    async def scenario() -> list[dict[str, object]]:
        config = service_settings(bootstrap=kafka_bootstrap, database_url=database, workdir=workdir, idle_after="1h")
        async with running_service(config) as harness:
            topic = config.kafka.topics.cart.name
            await harness.producer.send_many(topic, [("fuzz-cart", raw) for raw in records])
            await eventually(lambda: harness.service.stats.received >= len(records), timeout=30)
            assert harness.service.stats.applied == valid
            return await harness.read_topic("dead_letter", count=len(records) - valid)

    dead = asyncio.run(scenario())
    assert len(dead) == len(records) - valid
    assert all(isinstance(d["reason"], str) and d["reason"] for d in dead)
