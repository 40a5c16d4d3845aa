"""An in-process service on a real broker and database, with helpers to feed it and watch what it does."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from recovery.app.service import Service
from recovery.app.wiring import build_channels, build_composer
from recovery.ingest.kafka import Producer
from recovery.ingest.replay import route
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.steps.guards import QuietHoursPolicy

FAST_FLOWS = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 1s, channel: email, template: cart_reminder}
      - {name: offer, after: 1h, channel: email, template: cart_offer}
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: email, template: payment_failed}
"""


def service_settings(
    *,
    bootstrap: str,
    database_url: str,
    workdir: Path,
    flows: str = FAST_FLOWS,
    idle_after: str = "1s",
    **extra: Any,
) -> Settings:
    """Settings with unique topics and group, short timers, and no quiet hours (tests run at any hour)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    flows_file = workdir / "flows.yaml"
    flows_file.write_text(flows, encoding="utf-8")
    topics = {
        role: {"name": f"{prefix}.{role}"}
        for role in ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages")
    }
    always_open = QuietHoursPolicy(channels=())
    return Settings(
        kafka={
            "bootstrap_servers": bootstrap,
            "group_id": f"{prefix}-group",
            "topics": topics,
            "partitions": 2,
        },
        database={"url": database_url},
        abandonment={"idle_after": idle_after},
        flows_file=flows_file,
        channels=extra.pop("channels", {"transport": "outbox", "outbox_dir": workdir / "outbox"}),
        scheduler={"poll_interval": "100ms", "lease": "5s"},
        guards={"quiet_hours": always_open, **extra.pop("guards", {})},
        security={"link_secret": "test-secret-of-at-least-32-chars-" + prefix, **extra.pop("security", {})},
        http={"port": 0},
        **extra,
    )


def event(type_: str, cart_id: str, *, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """A valid v1 event with a fresh id."""
    return {
        "id": f"evt-{uuid.uuid4().hex}",
        "type": type_,
        "occurred_at": (at or datetime.now(UTC)).isoformat(),
        "cart_id": cart_id,
        **fields,
    }


def customer(index: int = 1, *, email: bool = True, sms: bool = False) -> dict[str, Any]:
    """A shopper with the given consents."""
    return {
        "id": f"cust-{index}-{uuid.uuid4().hex[:6]}",
        "email": f"shopper{index}@example.com",
        "phone": "+33612345678",
        "first_name": "Claire",
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "consent": {"email": email, "sms": sms, "phone": False},
    }


def cart(value: float = 189.8) -> dict[str, Any]:
    """A one-item cart."""
    return {
        "currency": "EUR",
        "value": value,
        "restore_url": "https://shop.example.com/cart/restore/1",
        "items": [{"sku": "SAC-01", "name": "Sac en cuir", "quantity": 1, "unit_price": value}],
    }


def failed_payment(index: int, *, at: datetime) -> dict[str, Any]:
    """A declined card on cart ``cart-<index>`` of shopper ``index`` (email consent only)."""
    return event(
        "payment.failed",
        f"cart-{index}",
        at=at,
        customer=customer(index),
        cart=cart(),
        payment={"reason": "card_declined", "method": "card"},
    )


@dataclass
class Harness:
    """A running service plus a producer on the same broker."""

    settings: Settings
    service: Service
    producer: Producer
    bootstrap: str

    async def send(self, *events: dict[str, Any] | bytes, topic: str | None = None) -> None:
        """Publish events (dicts or raw bytes) to the topic their type routes to."""
        for item in events:
            raw = item if isinstance(item, bytes) else json.dumps(item).encode()
            routed, key = route(raw, self.settings.kafka.topics)
            await self.producer.send_many(topic or routed, [(key, raw)])

    def outbox(self, channel: ChannelName = ChannelName.EMAIL) -> list[dict[str, Any]]:
        """Messages the local outbox channel received."""
        path = self.settings.channels.outbox_dir / f"{channel.value}.jsonl"
        if not path.exists():
            return []
        # The service may be appending a line as this reads: only whole lines (newline-terminated) count.
        whole, _, _being_written = path.read_text(encoding="utf-8").rpartition("\n")
        return [json.loads(line) for line in whole.split("\n") if line]

    async def read_topic(self, role: str, *, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        """At least ``count`` JSON messages from an output topic (fewer if the timeout passes)."""
        name = getattr(self.settings.kafka.topics, role).name
        return await read_json_topic(self.bootstrap, name, count=count, timeout=timeout)


async def read_json_topic(bootstrap: str, topic: str, *, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    """Read a topic from the beginning with a throwaway consumer."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend(json.loads(record.value) for record in records if record.value)
    finally:
        await consumer.stop()
    return found


async def eventually(
    check: Callable[[], Awaitable[object]] | Callable[[], object], *, timeout: float = 15, interval: float = 0.1
) -> None:
    """Wait until ``check`` returns something truthy (a row, an id); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[Harness]:
    """Start the service in-process; stop it cleanly afterwards."""
    service = Service(settings, channels=build_channels(settings), composer=build_composer(settings))
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, started=started))
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED, timeout=60)
    if task.done():
        waiter.cancel()
        await task
    producer = Producer(service.bootstrap_servers or "")
    await producer.start()
    try:
        yield Harness(settings=settings, service=service, producer=producer, bootstrap=service.bootstrap_servers or "")
    finally:
        await producer.stop()
        stop.set()
        await asyncio.wait_for(task, 30)


def ago(seconds: float) -> datetime:
    """A UTC time ``seconds`` in the past."""
    return datetime.now(UTC) - timedelta(seconds=seconds)
