"""The core path through a real broker and a real database (SQLite and PostgreSQL): events in, steps out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recovery.store.schema import carts, journeys, steps
from tests.harness import ago, cart, customer, event, eventually, running_service, service_settings

pytestmark = [pytest.mark.kafka]


async def rows(harness: Any, query: Any) -> list[Any]:
    async with harness.service.engine.connect() as conn:
        return list((await conn.execute(query)).mappings())


async def test_abandoned_cart_with_consent_gets_one_reminder_after_idle_time_and_delay(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """A cart idle for 1 s with email consent gets exactly one reminder, not before idle + step delay."""
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=database_url, workdir=tmp_path)
    async with running_service(settings) as harness:
        sent_at = time.monotonic()
        await harness.send(event("cart.updated", "cart-1", customer=customer(), cart=cart()))
        await eventually(lambda: len(harness.outbox()) >= 1, timeout=20)
        elapsed = time.monotonic() - sent_at
        messages = harness.outbox()
        assert [m["cart_id"] for m in messages] == ["cart-1"]
        assert messages[0]["step"] == "reminder"
        assert messages[0]["to"] == "shopper1@example.com"
        assert elapsed >= 2.0, "sent before idle time (1 s) + step delay (1 s)"
        published = await harness.read_topic("messages", count=3)  # two steps scheduled, one sent
        types = [m["type"] for m in published]
        assert "step.scheduled" in types and "message.sent" in types
        assert all("@" not in str(m) for m in published), "no email address on recovery.messages"


async def test_order_before_reminder_sends_nothing(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> None:
    """An order right after the cart activity means no abandonment and no message."""
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=database_url, workdir=tmp_path)
    async with running_service(settings) as harness:
        await harness.send(
            event("cart.updated", "cart-2", at=ago(5), customer=customer(), cart=cart()),
            event("order.completed", "cart-2", at=ago(4), order={"id": "o-2", "value": 189.8, "currency": "EUR"}),
        )
        await eventually(lambda: harness.service.stats.applied >= 2)
        # A control cart, idle as long but never ordered, sent after cart-2: its reminder proves the scheduler
        # swept idle carts and fired due steps after cart-2 was applied (a dead scheduler fails here).
        await harness.send(event("cart.updated", "cart-2-control", customer=customer(2), cart=cart()))
        await eventually(lambda: len(harness.outbox()) >= 1, timeout=20)
        assert [m["cart_id"] for m in harness.outbox()] == ["cart-2-control"]
        assert [j["cart_id"] for j in await rows(harness, select(journeys.c.cart_id))] == ["cart-2-control"]
        [row] = await rows(harness, select(carts.c.ordered_at, carts.c.abandon_at).where(carts.c.cart_id == "cart-2"))
        assert row["ordered_at"] is not None and row["abandon_at"] is None


async def test_late_order_cancels_pending_steps(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> None:
    """An order that happened before the due time but arrives after scheduling cancels the pending steps."""
    flows = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 1h, channel: email, template: cart_reminder}
"""
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=database_url, workdir=tmp_path, flows=flows)
    async with running_service(settings) as harness:
        cart_at = ago(3)
        await harness.send(event("cart.updated", "cart-3", at=cart_at, customer=customer(), cart=cart()))

        async def scheduled() -> bool:
            return len(await rows(harness, select(steps).where(steps.c.status == "pending"))) == 1

        await eventually(scheduled, timeout=20)
        # occurred one second after the cart update: long before the reminder's due time
        await harness.send(
            event("order.completed", "cart-3", at=ago(2), order={"id": "o-3", "value": 189.8, "currency": "EUR"})
        )

        async def cancelled() -> bool:
            found = await rows(harness, select(steps.c.status))
            return [r["status"] for r in found] == ["cancelled"]

        await eventually(cancelled)
        [journey] = await rows(harness, select(journeys.c.status, journeys.c.end_reason))
        assert journey["status"] == "cancelled" and journey["end_reason"] == "order_completed"
        published = await harness.read_topic("messages", count=2)
        assert [m["type"] for m in published] == ["step.scheduled", "step.cancelled"]
        assert harness.outbox() == []


async def test_the_same_event_delivered_twice_gives_one_journey_and_one_step(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """A redelivered payment failure (same id) starts one journey with one message."""
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=database_url, workdir=tmp_path)
    async with running_service(settings) as harness:
        failure = event(
            "payment.failed",
            "cart-4",
            customer=customer(),
            cart=cart(),
            payment={"reason": "card_declined", "method": "card"},
        )
        await harness.send(failure)
        await eventually(lambda: harness.service.stats.applied >= 1)
        await harness.send(failure)
        await eventually(lambda: harness.service.stats.duplicates >= 1)
        await eventually(lambda: len(harness.outbox()) >= 1)
        # duplicates >= 1: both deliveries are applied, so every journey and step either exists now or never will
        flow = journeys.c.flow == "payment_failed"
        assert len(await rows(harness, select(journeys).where(flow))) == 1
        assert len(await rows(harness, select(steps).where(steps.c.name == "retry_payment"))) == 1
        assert [m["step"] for m in harness.outbox()].count("retry_payment") == 1


async def test_malformed_events_go_to_dead_letter_and_valid_ones_around_them_are_processed(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """Not JSON, unknown type, missing cart_id, negative value: each dead-lettered with a reason."""
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=database_url, workdir=tmp_path)
    bad_value = event("cart.updated", "cart-x", cart=cart())
    bad_value["cart"]["value"] = -5
    missing_cart = event("cart.updated", "cart-y", cart=cart())
    del missing_cart["cart_id"]
    unknown = event("cart.exploded", "cart-z")
    async with running_service(settings) as harness:
        topic = settings.kafka.topics.cart.name
        await harness.send(event("cart.updated", "ok-1", cart=cart()), topic=topic)
        await harness.send(b"{not json at all", topic=topic)
        await harness.send(unknown, topic=topic)
        await harness.send(missing_cart, topic=topic)
        await harness.send(bad_value, topic=topic)
        await harness.send(event("cart.updated", "ok-2", cart=cart()), topic=topic)
        dead = await harness.read_topic("dead_letter", count=4)
        reasons = sorted(d["reason"] for d in dead)
        assert len(dead) == 4
        assert any(r.startswith("not JSON") for r in reasons)
        assert any("unknown event type 'cart.exploded'" in r for r in reasons)
        assert any("missing field 'cart_id'" in r for r in reasons)
        assert any("cart.value" in r and "greater than or equal to 0" in r for r in reasons)
        assert {d["topic"] for d in dead} == {topic}
        assert any(d["original"] == "{not json at all" for d in dead)

        async def valid_applied() -> bool:
            found = await rows(harness, select(carts.c.cart_id))
            return sorted(r["cart_id"] for r in found) == ["ok-1", "ok-2"]

        await eventually(valid_applied)
