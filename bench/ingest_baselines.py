"""The ingest bench's baselines, measured on the same events in the same run.

- PostgreSQL's own batched upserts through asyncpg: record each event id once (``ON CONFLICT DO NOTHING``)
  and upsert each cart's latest state, 2 000 events per set-based ``unnest`` statement, one transaction
  each: the minimum durable work of ingest, the limit of the machine.
- SQLite's own equivalent: ``executemany`` in one transaction per 2 000 (WAL, synchronous=NORMAL as the service).
- Plain aiokafka getmany + json.loads, and a FastStream batch subscriber that only counts.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from bench.ingest_mix import MixEvent

CHUNK = 2000
_PG_SCHEMA = """
CREATE TABLE own_processed (event_id text PRIMARY KEY);
CREATE TABLE own_carts (cart_id text PRIMARY KEY, customer_key text NOT NULL, kind text NOT NULL,
                        last_event_at timestamptz NOT NULL, state jsonb)
"""
_PG_IDS = "INSERT INTO own_processed SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING event_id"
_PG_CARTS = """
INSERT INTO own_carts SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[])
ON CONFLICT (cart_id) DO UPDATE SET customer_key = excluded.customer_key, kind = excluded.kind,
  last_event_at = excluded.last_event_at, state = coalesce(excluded.state, own_carts.state)
"""


def _batches(events: Sequence[MixEvent]) -> list[tuple[list[str], list[tuple[Any, ...]]]]:
    """Per 2 000 events: their ids, and one row per cart with its last event's state and id.

    Decoded before the clock starts: the baselines measure the database's own work only.
    """
    batches = []
    for offset in range(0, len(events), CHUNK):
        documents = [json.loads(event.raw) for event in events[offset : offset + CHUNK]]
        rows: dict[str, tuple[Any, ...]] = {}
        for doc in documents:  # a statement may not update one row twice: the cart's last event wins
            cart = doc.get("cart")
            state = json.dumps(cart) if cart is not None else None
            at = datetime.fromisoformat(doc["occurred_at"])
            rows[doc["cart_id"]] = (doc["id"], doc["cart_id"], doc["customer"]["id"], doc["type"], at, state)
        batches.append(([doc["id"] for doc in documents], list(rows.values())))
    return batches


async def postgres_own(dsn: str, events: Sequence[MixEvent]) -> float:
    """asyncpg set-based writes, one transaction per 2 000 events, events/s."""
    batches = _batches(events)
    conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(_PG_SCHEMA)
        started = time.perf_counter()
        for ids, latest in batches:
            async with conn.transaction():
                fresh = {row[0] for row in await conn.fetch(_PG_IDS, ids)}
                rows = [row[1:] for row in latest if row[0] in fresh]
                await conn.execute(_PG_CARTS, *[list(column) for column in zip(*rows, strict=True)])
        return len(events) / (time.perf_counter() - started)
    finally:
        await conn.close()


def sqlite_own(path: Path, events: Sequence[MixEvent]) -> float:
    """sqlite3 executemany, one transaction per 2 000 events (WAL, synchronous=NORMAL), events/s."""
    batches = _batches(events)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE own_processed (event_id text PRIMARY KEY)")
        db.execute(
            "CREATE TABLE own_carts (cart_id text PRIMARY KEY, customer_key text NOT NULL, kind text NOT NULL,"
            " last_event_at text NOT NULL, state text)"
        )
        started = time.perf_counter()
        for ids, latest in batches:
            db.execute("BEGIN")
            # one row at a time: rowcount says which ids are new
            fresh = {i for i in ids if db.execute("INSERT OR IGNORE INTO own_processed VALUES (?)", (i,)).rowcount}
            db.executemany(
                "INSERT INTO own_carts VALUES (?, ?, ?, ?, ?) ON CONFLICT (cart_id) DO UPDATE SET"
                " customer_key = excluded.customer_key, kind = excluded.kind, last_event_at = excluded.last_event_at,"
                " state = coalesce(excluded.state, own_carts.state)",
                [(*row[1:4], row[4].isoformat(), row[5]) for row in latest if row[0] in fresh],
            )
            db.execute("COMMIT")
        return len(events) / (time.perf_counter() - started)
    finally:
        db.close()


async def aiokafka_raw(bootstrap: str, topics: Sequence[str], count: int) -> float:
    """Plain aiokafka: getmany + json.loads of every record, events/s from the first record."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        max_poll_records=CHUNK,
    )
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=CHUNK)
            for records in batch.values():
                if started is None:
                    started = time.perf_counter()
                for record in records:
                    json.loads(record.value)
                seen += len(records)
    finally:
        await consumer.stop()
    return count / (time.perf_counter() - (started or time.perf_counter()))


async def faststream_noop(bootstrap: str, topics: Sequence[str], count: int) -> float:
    """A FastStream batch subscriber that only counts (manual ack per batch, as the service did), events/s."""
    broker = KafkaBroker(bootstrap, logger=None)
    first: list[float] = []
    counted: list[int] = []
    done = asyncio.Event()

    @broker.subscriber(
        *topics,
        group_id=f"noop-{uuid.uuid4().hex[:6]}",
        batch=True,
        max_records=CHUNK,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
    )
    async def handle(msg: KafkaMessage) -> None:
        records: Any = msg.raw_message
        if not first:
            first.append(time.perf_counter())
        counted.append(len(records))
        await msg.ack()
        if sum(counted) >= count:
            done.set()

    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), 600)
    finally:
        await broker.stop()
    return count / (time.perf_counter() - first[0])
