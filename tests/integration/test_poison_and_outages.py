"""Issue 9's reproductions on the real broker and PostgreSQL: poison costs itself only, outages heal by themselves."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from recovery.channels.base import Delivery, OutgoingMessage
from recovery.channels.file import LocalOutboxChannel
from recovery.ingest.poison import apply_isolating
from recovery.states import MessageState
from recovery.store.database import create_engine
from recovery.store.schema import carts, messages
from tests.fakes.tcp_proxy import TcpProxy
from tests.harness import Harness, cart, customer, event, eventually, running_service, service_settings

pytestmark = [pytest.mark.kafka]

NESTED = b'{"id":"x","type":"cart.updated","x":' + b"[" * 3000 + b"]" * 3000 + b"}"


async def cart_ids(harness: Harness) -> set[str]:
    assert harness.service.engine is not None
    async with harness.service.engine.connect() as conn:
        return set((await conn.execute(select(carts.c.cart_id))).scalars())


async def test_poison_on_one_key_is_dead_lettered_and_its_neighbours_are_processed(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    """Deep nesting, NUL in a store, an int32 quantity, a 1e15 value: each dead-lettered, valid ones all applied."""
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=postgres_url, workdir=tmp_path, idle_after="1h")
    valid = [event("cart.updated", "cart-k", customer=customer(), cart=cart(10 + i)) for i in range(4)]
    nul = event("cart.updated", "cart-k", cart=cart(), store="fr\u0000")
    huge_quantity = event("cart.updated", "cart-k", cart={**cart(), "items": [{**cart()["items"][0], "quantity": 3e9}]})
    huge_value = event("cart.updated", "cart-k", cart=cart(1e15))
    async with running_service(settings) as harness:
        topic = settings.kafka.topics.cart.name
        batch: list[dict[str, Any] | bytes] = [*valid[:2], NESTED, nul, huge_quantity, huge_value, *valid[2:]]
        for item in batch:
            await harness.send(item, topic=topic)
        await eventually(lambda: harness.service.stats.received >= 8, timeout=30)
        dead = await harness.read_topic("dead_letter", count=4)
        assert harness.service.stats.applied == 4
        assert "cart-k" in await cart_ids(harness)
    reasons = sorted(d["reason"] for d in dead)
    assert len(reasons) == 4, reasons
    assert any("nested too deeply" in r for r in reasons)
    assert any("'store' contains a control character" in r for r in reasons)
    assert any("quantity" in r for r in reasons) and any("cart.value" in r for r in reasons)


async def test_a_batch_postgres_refuses_is_split_to_dead_letter_only_the_record_at_fault(postgres_url: str) -> None:
    """Values PostgreSQL rejects (int4 overflow) cost their own record; the others are written, in order."""
    engine = create_engine(postgres_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n int4, seq int4)"))

        async def write(items: Sequence[tuple[int, int]]) -> int:
            async with engine.begin() as conn:
                for seq, n in items:
                    await conn.execute(text("INSERT INTO t (n, seq) VALUES (:n, :seq)"), {"n": n, "seq": seq})
            return len(items)

        values = [1, 2, 3_000_000_000, 4, 5, 6, 7, -3_000_000_000, 9]
        isolated = await apply_isolating(list(enumerate(values)), write, engine=engine)
        async with engine.connect() as conn:
            kept = list((await conn.execute(text("SELECT n FROM t ORDER BY seq"))).scalars())
    finally:
        await engine.dispose()
    assert kept == [1, 2, 4, 5, 6, 7, 9]
    assert [item for item, _ in isolated.refused] == [(2, 3_000_000_000), (7, -3_000_000_000)]
    assert all(reason.startswith("the database refused the event's values") for _, reason in isolated.refused)


def carts_named(prefix: str) -> list[dict[str, Any]]:
    return [event("cart.updated", f"{prefix}-{i}", customer=customer(i), cart=cart()) for i in range(10)]


async def test_after_a_database_outage_every_abandoned_cart_gets_its_email(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL cut for 8 s while events arrive: every loop heals, all 20 carts get one reminder, few log lines."""
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=proxied, workdir=tmp_path)
    try:
        async with running_service(settings) as harness:
            await harness.send(*carts_named("early"))
            with caplog.at_level(logging.WARNING):
                await asyncio.sleep(0.5)
                await proxy.cut()
                await harness.send(*carts_named("late"))
                await asyncio.sleep(8)
                during = [r for r in caplog.records if r.levelno >= logging.WARNING]
                await proxy.restore()
                await eventually(lambda: len({m["cart_id"] for m in harness.outbox()}) >= 20, timeout=60)
            reminders = [m["cart_id"] for m in harness.outbox() if m["step"] == "reminder"]
    finally:
        await proxy.stop()
    assert sorted(reminders) == sorted([f"early-{i}" for i in range(10)] + [f"late-{i}" for i in range(10)])
    assert len(during) <= 15, [r.getMessage() for r in during]  # one line per loop and state change, not per try
    assert any("back after" in r.getMessage() for r in caplog.records)


async def test_an_unexpected_error_while_sending_ends_in_message_failed(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A channel raising ValueError (say, on odd shopper data) fails the message once, with a reason."""
    calls: list[str] = []

    async def broken_send(self: Any, message: OutgoingMessage) -> Delivery:
        calls.append(message.message_id)
        raise ValueError("cannot encode header")

    monkeypatch.setattr(LocalOutboxChannel, "send", broken_send)
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=postgres_url, workdir=tmp_path)
    async with running_service(settings) as harness:
        await harness.send(event("cart.updated", "cart-x", customer=customer(), cart=cart()))
        published = await harness.read_topic("messages", count=3, timeout=30)
        failed = [m for m in published if m["type"] == "message.failed"]
        await asyncio.sleep(2 * settings.scheduler.poll_interval.total_seconds() + 0.5)
        assert harness.service.engine is not None
        async with harness.service.engine.connect() as conn:
            rows = list((await conn.execute(select(messages.c.state, messages.c.error_code))).all())
    assert [m["reason"] for m in failed] == ["unexpected_error"]
    assert rows == [(MessageState.FAILED.value, "unexpected_error")]
    assert len(calls) == 1, "the step is not re-claimed and retried forever"


async def test_a_record_with_a_non_utf8_header_does_not_lose_its_batch(kafka_bootstrap: str, tmp_path: Path) -> None:
    """FastStream decodes headers before the handler; a bad one must cost nothing (only that header is dropped)."""
    settings = service_settings(
        bootstrap=kafka_bootstrap, database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", workdir=tmp_path
    )
    async with running_service(settings) as harness:
        producer = AIOKafkaProducer(bootstrap_servers=harness.bootstrap)
        await producer.start()
        try:
            for index in range(3):
                raw = json.dumps(event("cart.updated", f"h-{index}", customer=customer(), cart=cart())).encode()
                headers = [("trace", b"\xff\xfe")] if index == 1 else []
                await producer.send_and_wait(settings.kafka.topics.cart.name, raw, key=b"h", headers=headers)
        finally:
            await producer.stop()
        await eventually(lambda: harness.service.stats.applied >= 3, timeout=30)
        assert {"h-0", "h-1", "h-2"} <= await cart_ids(harness)
