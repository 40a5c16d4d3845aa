"""Ingest throughput: the real service path vs a raw aiokafka consumer, on the bundled broker.

Prints events/s for: raw aiokafka getmany + json.loads (baseline), a no-op FastStream batch subscriber, then
the service's FastStream batch ingest writing to SQLite and to PostgreSQL, with the ratio to the baseline,
all on the same generated events in the same run.

    python -m bench.ingest [--events 100000] [--carts 20000] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from bench.common import DEFAULT_PG, Row, postgres_database, print_rows
from recovery.app.service import Service
from recovery.channels.file import LocalOutboxChannel
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer, ensure_topics
from recovery.render.composer import PlainComposer
from recovery.settings import Settings
from recovery.states import ChannelName

FLOWS_FILE = Path(__file__).resolve().parent.parent / "config" / "flows.yaml"


def make_events(count: int, carts: int) -> list[tuple[str, bytes]]:
    """~600-byte cart events over ``carts`` carts."""
    start = datetime.now(UTC) - timedelta(hours=1)
    events = []
    for index in range(count):
        cart_id = f"bench-cart-{index % carts}"
        body = {
            "id": f"bench-{index}",
            "type": "cart.updated" if index % 3 else "checkout.step",
            "occurred_at": (start + timedelta(milliseconds=index)).isoformat(),
            "store": "fr",
            "cart_id": cart_id,
            "checkout_step": "address",
            "customer": {
                "id": f"cust-{index % carts}",
                "email": f"s{index % carts}@example.com",
                "locale": "fr-FR",
                "timezone": "Europe/Paris",
                "consent": {"email": True},
            },
            "cart": {
                "currency": "EUR",
                "value": 189.8,
                "restore_url": "https://shop.example.com/r/1",
                "items": [
                    {
                        "sku": "SAC-CUIR-01",
                        "name": "Sac en cuir",
                        "quantity": 1,
                        "unit_price": 149.9,
                        "url": "https://shop.example.com/p/sac",
                    },
                    {"sku": "ETUI-02", "name": "Étui à cartes", "quantity": 2, "unit_price": 19.95},
                ],
            },
        }
        events.append((cart_id, json.dumps(body, ensure_ascii=False).encode()))
    return events


async def baseline(bootstrap: str, topic: str, count: int) -> float:
    """Raw aiokafka: getmany + json.loads, events/s."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batch.values():
                if started is None:
                    started = time.perf_counter()
                for record in records:
                    json.loads(record.value)
                seen += len(records)
    finally:
        await consumer.stop()
    return count / (time.perf_counter() - (started or time.perf_counter()))


async def faststream_noop(bootstrap: str, topic: str, count: int) -> float:
    """A FastStream batch subscriber that only counts (manual ack per batch, as the service), events/s."""
    broker = KafkaBroker(bootstrap, logger=None)
    seen: list[float] = []
    done = asyncio.Event()

    @broker.subscriber(
        topic,
        group_id=f"noop-{uuid.uuid4().hex[:6]}",
        batch=True,
        max_records=2000,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
    )
    async def handle(msg: KafkaMessage) -> None:
        records: Any = msg.raw_message
        if not seen:
            seen.append(time.perf_counter())
        counted.append(len(records))
        await msg.ack()
        if sum(counted) >= count:
            done.set()

    counted: list[int] = []
    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), 600)
    finally:
        await broker.stop()
    return count / (time.perf_counter() - seen[0])


async def service_rate(bootstrap: str, topic: str, count: int, database_url: str, workdir: Path) -> float:
    """The service's ingest path (FastStream batches → one transaction each), events/s."""
    settings = Settings(
        kafka={
            "bootstrap_servers": bootstrap,
            "group_id": f"svc-{uuid.uuid4().hex[:6]}",
            "topics": {"cart": {"name": topic}},
        },
        database={"url": database_url},
        flows_file=FLOWS_FILE,
        channels={"transport": "outbox", "outbox_dir": workdir / "outbox"},
        security={"link_secret": "bench-link-secret-of-at-least-32-characters"},
        http={"port": 0},
    )
    channels = {name: LocalOutboxChannel(workdir / "outbox", name) for name in ChannelName}
    service = Service(settings, channels=channels, composer=PlainComposer())
    stop, started_event = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, started=started_event))
    waiter = asyncio.create_task(started_event.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        await task  # raises the start-up error instead of waiting forever
    while service.stats.received == 0:  # noqa: ASYNC110 - polling a counter the consumer task updates
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    first = service.stats.received
    while service.stats.received < count:  # noqa: ASYNC110 - polling a counter the consumer task updates
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return (count - first) / elapsed


async def run(bootstrap: str, pg_admin: str, count: int, carts: int) -> list[Row]:
    """Baselines and the service on the same ``count`` events (4 partitions), as table rows."""
    topic = f"bench-cart-events-{uuid.uuid4().hex[:6]}"
    settings = Settings(kafka={"topics": {"cart": {"name": topic}}, "partitions": 4})
    await ensure_topics(bootstrap, settings.kafka)
    events = make_events(count, carts)
    size = sum(len(v) for _, v in events) / len(events)
    producer = Producer(bootstrap)
    await producer.start()
    for offset in range(0, len(events), 5000):
        await producer.send_many(topic, events[offset : offset + 5000])
    await producer.stop()
    del events
    what = f"{count:,} events (~{size:.0f} B, {carts:,} carts, 4 partitions)"
    raw = await baseline(bootstrap, topic, count)
    noop = await faststream_noop(bootstrap, topic, count)
    base = f"{raw:,.0f}/s (raw aiokafka)"
    rows = [
        Row(f"ingest, no-op FastStream batch subscriber, {what}", base, f"{noop:,.0f}/s", f"{noop / raw:.2f}x", "-")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await service_rate(bootstrap, topic, count, f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}", Path(tmp))
        rows.append(
            Row(f"ingest -> SQLite, {what}", base, f"{sqlite:,.0f}/s", f"{sqlite / raw:.2f}x", ">= 0.15x (goal 0.3x)")
        )
        async with postgres_database(pg_admin) as url:
            pg = await service_rate(bootstrap, topic, count, url, Path(tmp))
        target = ">= 0.30x and >= 20 000/s (goal 0.5x)"
        rows.append(Row(f"ingest -> PostgreSQL, {what}", base, f"{pg:,.0f}/s", f"{pg / raw:.2f}x", target))
    return rows


def main() -> None:
    """Run the ingest bench alone on its own bundled broker."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--carts", type=int, default=20_000)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()

    async def go() -> None:
        with EmbeddedBroker() as broker:
            print_rows(await run(broker.bootstrap_servers, args.postgres_url, args.events, args.carts))

    asyncio.run(go())


if __name__ == "__main__":
    main()
