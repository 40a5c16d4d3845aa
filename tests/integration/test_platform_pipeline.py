"""Platforms without code, through the whole pipeline: signed webhooks (and CloudEvents on Kafka from
independent clients) to the right email at the real SMTP server or SMS at the Twilio-shaped server."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from recovery.api.platforms.webhook_signatures import base64_hmac, stripe_signature
from recovery.settings import Settings, TopicSettings
from recovery.store.schema import steps
from tests.fakes.fixtures import fake_twilio, smtp_sink
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_server import FakeTwilio
from tests.harness import Harness, eventually, running_service, service_settings
from tests.platform_payloads import SHOPIFY_CHECKOUT, SHOPIFY_ORDER, STRIPE_PAYMENT_FAILED, WOO_ORDER, body, variant

__all__ = ["fake_twilio", "smtp_sink"]
pytestmark = [pytest.mark.kafka]

SECRETS = {"shopify": "shpss_pipeline", "stripe": "whsec_pipeline", "woocommerce": "wc_pipeline"}
FLOWS = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 2s, channel: email, template: cart_reminder}
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: sms, template: payment_failed}
"""


def settings_for(tmp_path: Path, kafka_bootstrap: str, smtp: SmtpSink, twilio: FakeTwilio, **formats: str) -> Settings:
    """Real providers, the three webhook secrets, and optional input formats per topic role."""
    settings = service_settings(
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        flows=FLOWS,
        ingest={name: {"secret": secret} for name, secret in SECRETS.items()},
        channels={
            "transport": "providers",
            "email": {"smtp_host": smtp.host, "smtp_port": smtp.port, "sender": "shop@example.com"},
            "sms": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "sender": "+15005550006",
                "api_base_url": twilio.url,
            },
        },
    )
    topics = settings.kafka.topics
    changed = {role: TopicSettings(name=getattr(topics, role).name, format=fmt) for role, fmt in formats.items()}
    kafka = settings.kafka.model_copy(update={"topics": topics.model_copy(update=changed)})
    return settings.model_copy(update={"kafka": kafka})


@asynccontextmanager
async def webhooks(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the running service's own port."""
    url = f"http://127.0.0.1:{harness.service.http_port}"
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        yield client


def checkout(token: str, email: str, **changes: Any) -> dict[str, Any]:
    """A Shopify checkout for a fresh token, updated just now (so it is abandoned after the idle time)."""
    now = datetime.now(UTC).isoformat()
    person = {**SHOPIFY_CHECKOUT["customer"], "id": uuid.uuid4().int % 10**15, "email": email}
    return variant(
        SHOPIFY_CHECKOUT, token=token, email=email, updated_at=now, created_at=now, customer=person, **changes
    )


async def post_shopify(client: httpx.AsyncClient, payload: dict[str, Any], topic: str, delivery: str) -> httpx.Response:
    raw = body(payload)
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64_hmac(SECRETS["shopify"], raw),
        "X-Shopify-Webhook-Id": delivery,
        "Content-Type": "application/json",
    }
    return await client.post("/ingest/shopify", content=raw, headers=headers)


def mails_to(smtp: SmtpSink, address: str) -> list[Any]:
    return [mail for mail in smtp.received if address in mail.rcpt_tos]


async def step_statuses(harness: Harness) -> list[str]:
    assert harness.service.engine is not None
    async with harness.service.engine.connect() as conn:
        return [row[0] for row in await conn.execute(select(steps.c.status).where(steps.c.status != "skipped"))]


async def test_shopify_checkout_gets_its_reminder_and_an_order_cancels_another_checkouts_reminder(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """A signed abandoned checkout is emailed once (a replay changes nothing); an order cancels its checkout's step."""
    settings = settings_for(tmp_path, kafka_bootstrap, smtp_sink, fake_twilio)
    async with running_service(settings) as harness, webhooks(harness) as client:
        abandoned = checkout("tok-abandoned-" + uuid.uuid4().hex[:6], "anna@example.com")
        first = await post_shopify(client, abandoned, "checkouts/create", delivery="shp-1")
        assert first.json() == {"status": "published", "events": 1}
        replay = await post_shopify(client, abandoned, "checkouts/create", delivery="shp-1")
        assert replay.json() == {"status": "duplicate"}

        bought_token = "tok-bought-" + uuid.uuid4().hex[:6]
        await post_shopify(client, checkout(bought_token, "bruno@example.com"), "checkouts/update", delivery="shp-2")

        async def both_scheduled() -> bool:
            return len(await step_statuses(harness)) >= 2

        await eventually(both_scheduled, timeout=20)
        order = variant(
            SHOPIFY_ORDER,
            checkout_token=bought_token,
            id=int(time.time() * 1000),
            processed_at=datetime.now(UTC).isoformat(),
        )
        assert (await post_shopify(client, order, "orders/create", delivery="shp-3")).status_code == 200

        await eventually(lambda: len(mails_to(smtp_sink, "anna@example.com")) >= 1, timeout=20)

        async def cancelled() -> bool:
            return "cancelled" in await step_statuses(harness)

        await eventually(cancelled, timeout=20)
        await asyncio.sleep(3)  # past the reminder's delay: the bought checkout must still have no mail
        assert len(mails_to(smtp_sink, "anna@example.com")) == 1
        assert mails_to(smtp_sink, "bruno@example.com") == []


async def test_bad_stale_and_partial_deliveries_publish_nothing_or_a_dead_letter(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """Forged 401, stale Stripe 400, a cut-off body 401, a signed but broken body 200 + dead letter naming it."""
    settings = settings_for(tmp_path, kafka_bootstrap, smtp_sink, fake_twilio)
    async with running_service(settings) as harness, webhooks(harness) as client:
        raw = body(checkout("tok-forged", "eve@example.com"))
        forged = await client.post(
            "/ingest/shopify",
            content=raw,
            headers={"X-Shopify-Topic": "checkouts/create", "X-Shopify-Hmac-Sha256": base64_hmac("guess", raw)},
        )
        assert forged.status_code == 401
        partial = await client.post(
            "/ingest/shopify",
            content=raw[: len(raw) // 2],
            headers={
                "X-Shopify-Topic": "checkouts/create",
                "X-Shopify-Hmac-Sha256": base64_hmac(SECRETS["shopify"], raw),
            },
        )
        assert partial.status_code == 401
        stripe_raw = body(STRIPE_PAYMENT_FAILED)
        stale = await client.post(
            "/ingest/stripe",
            content=stripe_raw,
            headers={"Stripe-Signature": stripe_signature(SECRETS["stripe"], stripe_raw, int(time.time()) - 600)},
        )
        assert stale.status_code == 400
        cut = raw[: len(raw) // 2]
        signed_cut = await client.post(
            "/ingest/shopify",
            content=cut,
            headers={
                "X-Shopify-Topic": "checkouts/create",
                "X-Shopify-Hmac-Sha256": base64_hmac(SECRETS["shopify"], cut),
            },
        )
        assert signed_cut.json() == {"status": "dead_lettered", "reason": "shopify: body is not JSON"}
        no_cart = json.loads(json.dumps(STRIPE_PAYMENT_FAILED))
        no_cart["id"], no_cart["created"] = "evt_" + uuid.uuid4().hex, int(time.time())
        no_cart["data"]["object"]["metadata"] = {}
        no_cart_raw = body(no_cart)
        missing = await client.post(
            "/ingest/stripe",
            content=no_cart_raw,
            headers={"Stripe-Signature": stripe_signature(SECRETS["stripe"], no_cart_raw, int(time.time()))},
        )
        assert missing.status_code == 200
        letters = await harness.read_topic("dead_letter", count=2)
        by_reason = {letter["reason"]: letter for letter in letters}  # two partitions: any order
        assert set(by_reason) == {
            "shopify: body is not JSON",
            "stripe payment_intent.payment_failed: missing field 'data.object.metadata.cart_id'",
        }
        assert by_reason["shopify: body is not JSON"]["original"] == cut.decode()
        await asyncio.sleep(2)
        assert smtp_sink.received == [] and fake_twilio.messages == []


async def test_stripe_failure_on_a_shopify_checkout_texts_the_shopper(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """Shopify checkout (SMS consent) then Stripe payment_intent.payment_failed with metadata.cart_id: one SMS."""
    settings = settings_for(tmp_path, kafka_bootstrap, smtp_sink, fake_twilio)
    async with running_service(settings) as harness, webhooks(harness) as client:
        token = "tok-pay-" + uuid.uuid4().hex[:6]
        consenting = checkout(
            token, "chloe@example.com", buyer_accepts_sms_marketing=True, sms_marketing_phone="+33612345678"
        )
        # Stripe's ``created`` has whole seconds: a failure stamped before the cart's last update is stale.
        consenting["updated_at"] = datetime.fromtimestamp(time.time() - 2, UTC).isoformat()
        assert (await post_shopify(client, consenting, "checkouts/update", delivery="shp-p")).status_code == 200
        await eventually(lambda: harness.service.stats.applied >= 1, timeout=20)
        failure = json.loads(json.dumps(STRIPE_PAYMENT_FAILED))
        failure["id"], failure["created"] = "evt_" + uuid.uuid4().hex, int(time.time())
        failure["data"]["object"]["metadata"]["cart_id"] = token
        raw = body(failure)
        at = int(time.time())
        rotated = (
            f"{stripe_signature('whsec_old', raw, at)},{stripe_signature(SECRETS['stripe'], raw, at).split(',')[1]}"
        )
        answer = await client.post("/ingest/stripe", content=raw, headers={"Stripe-Signature": rotated})
        assert answer.json() == {"status": "published", "events": 1}
        await eventually(lambda: len(fake_twilio.messages) >= 1, timeout=20)
        [sms] = fake_twilio.messages
        assert sms.to == "+33612345678"


async def test_woocommerce_guest_order_gets_a_reminder_and_paying_cancels_another(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """Pending guest order: reminder email; a second pending order then processing: its step cancelled, no mail."""
    settings = settings_for(tmp_path, kafka_bootstrap, smtp_sink, fake_twilio)

    def woo(order_id: int, email: str, status: str) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return variant(
            WOO_ORDER,
            id=order_id,
            status=status,
            cart_hash=f"hash-{order_id}",
            date_modified_gmt=now,
            billing={**WOO_ORDER["billing"], "email": email},
        )

    async def post(payload: dict[str, Any], delivery: str) -> httpx.Response:
        raw = body(payload)
        headers = {
            "X-WC-Webhook-Topic": "order.updated",
            "X-WC-Webhook-Delivery-ID": delivery,
            "X-WC-Webhook-Signature": base64_hmac(SECRETS["woocommerce"], raw),
        }
        return await client.post("/ingest/woocommerce", content=raw, headers=headers)

    async with running_service(settings) as harness, webhooks(harness) as client:
        ping = await client.post(
            "/ingest/woocommerce",
            content=b"webhook_id=7",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert ping.status_code == 200
        base = int(time.time())
        assert (await post(woo(base, "gina@example.com", "pending"), "wc-1")).json()["events"] == 1
        await post(woo(base + 1, "hugo@example.com", "pending"), "wc-2")

        async def two_scheduled() -> bool:
            return len(await step_statuses(harness)) >= 2

        await eventually(two_scheduled, timeout=20)
        await post(woo(base + 1, "hugo@example.com", "processing"), "wc-3")
        await eventually(lambda: len(mails_to(smtp_sink, "gina@example.com")) >= 1, timeout=20)

        async def cancelled() -> bool:
            return "cancelled" in await step_statuses(harness)

        await eventually(cancelled, timeout=20)
        await asyncio.sleep(3)
        assert mails_to(smtp_sink, "hugo@example.com") == []


def binary_cloudevent(cart_id: str, email: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A native cart.updated as a binary-mode CloudEvent: attributes in ce_* headers, data as the value."""
    data = {
        "customer": {"email": email, "consent": {"email": True}},
        "cart": {
            "currency": "EUR",
            "value": 42,
            "restore_url": "https://shop.example.com/cart/" + cart_id,
            "items": [{"sku": "T-1", "name": "Tasse", "quantity": 2, "unit_price": 21}],
        },
    }
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", b"cart.updated"),
        ("ce_id", uuid.uuid4().hex.encode()),
        ("ce_source", b"/shop/fr"),
        ("ce_subject", cart_id.encode()),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("content-type", b"application/json"),
    ]
    return json.dumps(data).encode(), headers


async def test_binary_cloudevents_from_independent_producers_reach_the_shopper(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """CloudEvents in binary mode from aiokafka and from librdkafka (confluent-kafka) each get their reminder."""
    settings = settings_for(tmp_path, kafka_bootstrap, smtp_sink, fake_twilio, cart="cloudevents")
    topic = settings.kafka.topics.cart.name
    async with running_service(settings):
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            value, headers = binary_cloudevent("ce-aiokafka", "ines@example.com")
            await producer.send_and_wait(topic, value, key=b"ce-aiokafka", headers=headers)
            await producer.send_and_wait(topic, b'{"not": "a cloudevent"}', key=b"ce-bad")
        finally:
            await producer.stop()
        confluent_kafka = pytest.importorskip("confluent_kafka")
        rd = confluent_kafka.Producer({"bootstrap.servers": kafka_bootstrap})
        value, headers = binary_cloudevent("ce-librdkafka", "jules@example.com")
        rd.produce(topic, value=value, key=b"ce-librdkafka", headers=headers)
        assert await asyncio.to_thread(rd.flush, 15) == 0
        await eventually(lambda: len(mails_to(smtp_sink, "ines@example.com")) >= 1, timeout=25)
        await eventually(lambda: len(mails_to(smtp_sink, "jules@example.com")) >= 1, timeout=25)
        letters = await harness_dead_letters(settings, kafka_bootstrap)
        assert [letter["reason"] for letter in letters] == ["cloudevents: missing attribute 'specversion'"]


async def harness_dead_letters(settings: Settings, bootstrap: str) -> list[dict[str, Any]]:
    from tests.harness import read_json_topic

    return await read_json_topic(bootstrap, settings.kafka.topics.dead_letter.name, count=1)
