"""Input topics of a platform format: records translated before validation, dead-lettered or skipped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recovery.render.composer import PlainComposer
from recovery.settings import Settings, load_settings
from recovery.states import ChannelName
from recovery.store.schema import carts
from recovery.testing import FakeRecord, Pipeline, ScriptedChannel
from tests.platform_payloads import SHOPIFY_CHECKOUT, SHOPIFY_ORDER, STRIPE_PAYMENT_FAILED, body, variant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[Pipeline]:
    flows = tmp_path / "flows.yaml"
    flows.write_text("flows: []\n", encoding="utf-8")
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'recovery.db'}"},
        flows_file=flows,
        kafka={
            "topics": {
                "cart": {"format": "shopify"},
                "payment": {"format": "stripe"},
                "order": {"format": "cloudevents"},
            }
        },
    )
    channels = {name: ScriptedChannel(name) for name in (ChannelName.EMAIL, ChannelName.SMS)}
    async with Pipeline.start(settings=settings, channels=channels, composer=PlainComposer(), now=NOW) as started:
        yield started


def record(topic: str, value: bytes, offset: int, headers: list[tuple[str, bytes]] | None = None) -> FakeRecord:
    return FakeRecord(topic=topic, offset=offset, value=value, headers=headers or [])


async def cart_rows(pipeline: Pipeline) -> list[Any]:
    async with pipeline.processor._engine.connect() as conn:
        return list((await conn.execute(select(carts.c.cart_id, carts.c.ordered_at))).mappings())


async def test_shopify_topic_records_become_carts_and_orders(pipeline: Pipeline) -> None:
    """On a ``format: shopify`` topic a checkout makes a cart and its order closes it."""
    topic = pipeline.settings.kafka.topics.cart.name
    checkout = record(topic, body(SHOPIFY_CHECKOUT), 1, [("X-Shopify-Topic", b"checkouts/update")])
    order = record(topic, body({**SHOPIFY_ORDER, "topic": "orders/create"}), 2)
    report = await pipeline.processor.process([checkout, order])
    assert (report.applied, report.rejected, report.skipped) == (2, 0, 0)
    [row] = await cart_rows(pipeline)
    assert row["cart_id"] == "123123123" and row["ordered_at"] is not None


async def test_a_record_that_does_not_map_is_dead_lettered_naming_format_and_field(pipeline: Pipeline) -> None:
    """A Stripe event without metadata.cart_id goes to the dead letters with the format and the field."""
    payload = json.loads(json.dumps(STRIPE_PAYMENT_FAILED))
    payload["data"]["object"]["metadata"] = {}
    report = await pipeline.processor.process([record(pipeline.settings.kafka.topics.payment.name, body(payload), 1)])
    assert (report.applied, report.rejected) == (0, 1)
    [(_, _, raw)] = pipeline.dead_letters.sent
    letter = json.loads(raw)
    assert letter["reason"] == "stripe payment_intent.payment_failed: missing field 'data.object.metadata.cart_id'"
    assert json.loads(letter["original"]) == payload


async def test_unused_platform_types_are_skipped_and_counted_not_dead_lettered(pipeline: Pipeline) -> None:
    """Shopify products/update is counted as skipped; nothing reaches the dead letters."""
    topic = pipeline.settings.kafka.topics.cart.name
    report = await pipeline.processor.process([record(topic, body({"id": 1, "topic": "products/update"}), 1)])
    assert (report.skipped, report.rejected, report.applied) == (1, 0, 0)
    assert pipeline.dead_letters.sent == []
    assert pipeline.processor._skips.snapshot() == {("shopify", "products/update"): 1}


async def test_cloudevents_binary_record_reads_its_ce_headers(pipeline: Pipeline) -> None:
    """A binary-mode CloudEvent (attributes in ce_* headers, data the native event) is applied."""
    data = {
        "type": "order.completed",
        "occurred_at": "2026-11-20T10:00:00+01:00",
        "order": {"id": "o-1", "value": 10, "currency": "EUR"},
    }
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", b"order.completed"),
        ("ce_id", b"ce-1"),
        ("ce_source", b"/shop"),
        ("ce_subject", b"cart-ce"),
    ]
    report = await pipeline.processor.process(
        [record(pipeline.settings.kafka.topics.order.name, body(data), 1, headers)]
    )
    assert (report.applied, report.rejected) == (1, 0)


async def test_cloudevent_without_specversion_is_dead_lettered_naming_it(pipeline: Pipeline) -> None:
    """A plain JSON event on a cloudevents topic is refused: the missing attribute is named."""
    data = {
        "id": "x",
        "type": "order.completed",
        "occurred_at": "2026-11-20T10:00:00+01:00",
        "cart_id": "c",
        "order": {"id": "o-1", "value": 10, "currency": "EUR"},
    }
    report = await pipeline.processor.process([record(pipeline.settings.kafka.topics.order.name, body(data), 1)])
    assert report.rejected == 1
    assert json.loads(pipeline.dead_letters.sent[0][2])["reason"] == "cloudevents: missing attribute 'specversion'"


async def test_translated_event_the_contract_refuses_names_the_format(pipeline: Pipeline) -> None:
    """A Shopify checkout whose currency is not ISO 4217 fails validation: the reason says shopify."""
    bad = variant(SHOPIFY_CHECKOUT, presentment_currency="euro", topic="checkouts/update")
    await pipeline.processor.process([record(pipeline.settings.kafka.topics.cart.name, body(bad), 1)])
    reason = json.loads(pipeline.dead_letters.sent[0][2])["reason"]
    assert reason.startswith("shopify (translated to cart.updated): field 'cart.currency'")


def test_setting_only_a_topics_format_keeps_its_default_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """RECOVERY_KAFKA__TOPICS__CART__FORMAT alone: the cart topic keeps the name cart-events."""
    monkeypatch.setenv("RECOVERY_KAFKA__TOPICS__CART__FORMAT", "woocommerce")
    monkeypatch.delenv("RECOVERY_CONFIG", raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no config/recovery.yaml here
    topics = load_settings().kafka.topics
    assert (topics.cart.name, topics.cart.format) == ("cart-events", "woocommerce")
    assert (topics.payment.name, topics.payment.format) == ("payment-events", "native")


def test_only_the_undecodable_header_is_dropped_so_ce_headers_survive() -> None:
    """A record with a binary header keeps its ce_* headers (CloudEvents binary mode reads them)."""
    from recovery.adapters.formats import header_map

    mixed = FakeRecord(topic="t", headers=[("trace", b"\xff\xfe"), ("ce_specversion", b"1.0"), ("ce_id", b"x")])
    assert header_map(mixed.headers) == {"ce_specversion": "1.0", "ce_id": "x"}
