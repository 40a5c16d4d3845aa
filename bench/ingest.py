"""Ingest throughput: the real service path vs a raw aiokafka consumer, on the bundled broker.

Prints events/s for: raw aiokafka getmany + json.loads (baseline), then the service's FastStream batch
ingest writing to SQLite and to PostgreSQL (if reachable), with the ratio to the baseline.

    python bench/ingest.py [--events 100000] [--carts 20000] [--postgres-url URL]
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

from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from recovery.channels.base import ChannelName
from recovery.channels.file import LocalOutboxChannel
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer, ensure_topics
from recovery.render.composer import PlainComposer
from recovery.service import Service
from recovery.settings import Settings

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
        security={"link_secret": "bench"},
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--carts", type=int, default=20_000)
    parser.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        bootstrap = broker.bootstrap_servers
        topic = "bench-cart-events"
        settings = Settings(kafka={"topics": {"cart": {"name": topic}}, "partitions": 4})
        await ensure_topics(bootstrap, settings.kafka)
        events = make_events(args.events, args.carts)
        size = sum(len(v) for _, v in events) / len(events)
        producer = Producer(bootstrap)
        await producer.start()
        for offset in range(0, len(events), 5000):
            await producer.send_many(topic, events[offset : offset + 5000])
        await producer.stop()
        print(f"{args.events} events (~{size:.0f} bytes) over {args.carts} carts, 4 partitions, bundled broker")
        raw = await baseline(bootstrap, topic, args.events)
        print(f"baseline  raw aiokafka getmany + json.loads : {raw:>9,.0f} events/s")
        sqlite_rate = await service_rate(
            bootstrap, topic, args.events, f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", Path(tmp)
        )
        print(
            f"service   ingest -> SQLite                  : {sqlite_rate:>9,.0f} events/s "
            f"({sqlite_rate / raw:.2f}x baseline)"
        )
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_async_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            print(f"service   ingest -> PostgreSQL              : skipped ({exc.__class__.__name__})")
            await admin.dispose()
            return
        try:
            url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
            pg_rate = await service_rate(bootstrap, topic, args.events, url, Path(tmp))
            print(
                f"service   ingest -> PostgreSQL              : {pg_rate:>9,.0f} events/s "
                f"({pg_rate / raw:.2f}x baseline)"
            )
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
