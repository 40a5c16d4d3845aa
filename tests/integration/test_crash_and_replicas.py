"""Real service processes: SIGKILL mid-stream loses and doubles nothing; two replicas share the work."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from recovery.ingest.kafka import Producer
from tests.harness import cart, customer, event
from tests.process import start_service, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ONE_MESSAGE_PER_CART = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: email, template: payment_failed}
"""


def write_config(workdir: Path, *, bootstrap: str, database_url: str, prefix: str) -> Path:
    """A config file for ``recovery run`` with unique topics and no quiet hours."""
    (workdir / "flows.yaml").write_text(ONE_MESSAGE_PER_CART, encoding="utf-8")
    topics = {
        role: {"name": f"{prefix}.{role}"}
        for role in ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages")
    }
    config = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": f"{prefix}-group",
            "topics": topics,
            "partitions": 4,
            "batch_size": 100,
        },
        "database": {"url": database_url},
        "abandonment": {"idle_after": "1h"},
        "flows_file": str(workdir / "flows.yaml"),
        "scheduler": {"poll_interval": "100ms", "lease": "3s"},
        "http": {"port": 0},
        "guards": {"quiet_hours": {"channels": []}, "frequency_cap": 0},
        "security": {"link_secret": "test-secret-of-at-least-32-characters-" + prefix},
        "channels": {"transport": "outbox"},  # a dry run: messages land in RECOVERY_CHANNELS__OUTBOX_DIR
    }
    path = workdir / "recovery.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def delivered(*outboxes: Path) -> list[str]:
    """Message ids of every complete line the local outbox channel wrote."""
    ids = []
    for directory in outboxes:
        path = directory / "email.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                ids.append(json.loads(line)["message_id"])
            except ValueError:
                continue  # a line cut by SIGKILL: that message was not sent
    return ids


def payment_failures(count: int) -> list[dict[str, Any]]:
    return [
        event(
            "payment.failed",
            f"crash-cart-{i}",
            customer=customer(i),
            cart=cart(),
            payment={"reason": "card_declined", "method": "card"},
        )
        for i in range(count)
    ]


async def publish(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    producer = Producer(bootstrap)
    await producer.start()
    try:
        await producer.send_many(topic, [(e["cart_id"], json.dumps(e).encode()) for e in events])
    finally:
        await producer.stop()


def test_sigkill_mid_stream_then_restart_loses_no_event_and_sends_nothing_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Kill -9 while sending; the restarted service delivers every message exactly once."""
    prefix = f"k{uuid.uuid4().hex[:8]}"
    config = write_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        prefix=prefix,
    )
    outbox = tmp_path / "outbox"
    total = 400
    first = start_service(config, tmp_path / "first.log", outbox=outbox)
    try:
        asyncio.run(publish(kafka_bootstrap, f"{prefix}.payment", payment_failures(total)))
        wait_until(lambda: len(delivered(outbox)) >= 40, 90, "first messages", [first])
    finally:
        first.kill()
    assert len(delivered(outbox)) < total, "the kill came too late to test anything"
    second = start_service(config, tmp_path / "second.log", outbox=outbox)
    try:
        wait_until(lambda: len(set(delivered(outbox))) >= total, 120, "every message", [second])
        time.sleep(4)  # past the claim lease: a stale claim would be re-fired now
    finally:
        second.stop()
    counts = Counter(delivered(outbox))
    assert len(counts) == total
    assert [m for m, n in counts.items() if n > 1] == []


def test_two_service_processes_on_postgresql_fire_every_step_exactly_once(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    """Two replicas in one consumer group against one PostgreSQL: each message goes out once."""
    prefix = f"r{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path, bootstrap=kafka_bootstrap, database_url=postgres_url, prefix=prefix)
    outboxes = [tmp_path / "outbox-a", tmp_path / "outbox-b"]
    total = 300
    replicas = [start_service(config, tmp_path / f"{box.name}.log", outbox=box) for box in outboxes]
    try:
        time.sleep(2)
        asyncio.run(publish(kafka_bootstrap, f"{prefix}.payment", payment_failures(total)))
        wait_until(lambda: len(set(delivered(*outboxes))) >= total, 120, "every message", replicas)
        time.sleep(4)
    finally:
        for replica in replicas:
            replica.stop()
    counts = Counter(delivered(*outboxes))
    assert len(counts) == total
    assert [m for m, n in counts.items() if n > 1] == []
    assert all(len(delivered(box)) > 0 for box in outboxes), "both replicas should have sent some"
