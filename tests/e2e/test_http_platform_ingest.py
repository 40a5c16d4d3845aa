"""Platform webhooks over HTTP: signatures, answers, dead letters and durable dedup, on both databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.api.platforms.ingest_routes import attach_ingest
from recovery.api.platforms.webhook_signatures import base64_hmac, stripe_signature
from recovery.clock import ManualClock
from recovery.ingest.kafka import KafkaUnavailableError
from recovery.ingest.platform_formats import PlatformSkips
from recovery.settings import Settings
from recovery.testing import RecordingDeadLetters
from tests.platform_payloads import SHOPIFY_CHECKOUT, STRIPE_PAYMENT_FAILED, WOO_ORDER, body, variant

NOW = datetime(2025, 11, 20, 9, 0, 30, tzinfo=UTC)  # 30 s after STRIPE_PAYMENT_FAILED's "created"
SECRETS = {"shopify": "shpss_test", "stripe": "whsec_test", "woocommerce": "wc-secret"}


def settings(**ingest: Any) -> Settings:
    secrets = {name: {"secret": secret} for name, secret in SECRETS.items()}
    return Settings(security={"link_secret": "link-secret"}, ingest={**secrets, **ingest})


def make_app(engine: AsyncEngine, config: Settings, sent: RecordingDeadLetters) -> Any:
    app = create_app(engine=engine, settings=config, clock=ManualClock(NOW))
    attach_ingest(app, publisher=sent, skips=PlatformSkips())
    return app


@pytest.fixture
def sent() -> RecordingDeadLetters:
    return RecordingDeadLetters()


@pytest.fixture
async def client(engine: AsyncEngine, sent: RecordingDeadLetters) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(engine, settings(), sent)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal") as http:
        yield http


def shopify_headers(
    raw: bytes, topic: str = "checkouts/update", delivery: str = "d-1", secret: str = "shpss_test"
) -> dict[str, str]:
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64_hmac(secret, raw),
        "X-Shopify-Webhook-Id": delivery,
        "Content-Type": "application/json",
    }


def woo_headers(raw: bytes, delivery: str = "w-1") -> dict[str, str]:
    return {
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Signature": base64_hmac("wc-secret", raw),
        "X-WC-Webhook-Delivery-ID": delivery,
        "Content-Type": "application/json",
    }


def published(sent: RecordingDeadLetters, topic_suffix: str = "") -> list[dict[str, Any]]:
    return [json.loads(value) for topic, _, value in sent.sent if topic.endswith(topic_suffix)]


async def test_signed_shopify_checkout_is_published_as_a_native_cart_event_keyed_by_cart(
    client: httpx.AsyncClient, sent: RecordingDeadLetters
) -> None:
    """A signed checkouts/update is published once to the cart topic, key = checkout token."""
    raw = body(SHOPIFY_CHECKOUT)
    answer = await client.post("/ingest/shopify", content=raw, headers=shopify_headers(raw))
    assert answer.status_code == 200 and answer.json() == {"status": "published", "events": 1}
    [(topic, key, value)] = sent.sent
    assert (topic, key) == ("cart-events", "123123123")
    assert json.loads(value)["type"] == "cart.updated"


@pytest.mark.parametrize("signature", [None, "", "bm9wZQ==", base64_hmac("another-secret", b"x")])
async def test_bad_or_missing_shopify_signature_is_401_and_nothing_published(
    client: httpx.AsyncClient, sent: RecordingDeadLetters, signature: str | None
) -> None:
    """Without the app secret's signature over the raw body: 401, nothing published."""
    raw = body(SHOPIFY_CHECKOUT)
    headers = shopify_headers(raw)
    if signature is None:
        del headers["X-Shopify-Hmac-Sha256"]
    else:
        headers["X-Shopify-Hmac-Sha256"] = signature
    answer = await client.post("/ingest/shopify", content=raw, headers=headers)
    assert answer.status_code == 401 and sent.sent == []


async def test_a_body_changed_after_signing_is_refused(client: httpx.AsyncClient, sent: RecordingDeadLetters) -> None:
    """The signature covers the exact bytes: re-serialised JSON with the same meaning is refused."""
    raw = body(SHOPIFY_CHECKOUT)
    headers = shopify_headers(raw)
    answer = await client.post(
        "/ingest/shopify", content=json.dumps(SHOPIFY_CHECKOUT, indent=1).encode(), headers=headers
    )
    assert answer.status_code == 401 and sent.sent == []


async def test_a_redelivered_shopify_webhook_is_acknowledged_and_not_published_again(
    engine: AsyncEngine, sent: RecordingDeadLetters
) -> None:
    """Same X-Shopify-Webhook-Id twice, even through a new app (a restart): 200 duplicate, one publish."""
    raw = body(SHOPIFY_CHECKOUT)
    for _ in range(2):  # two apps over one database: the dedup is in the database, not in memory
        app = make_app(engine, settings(), sent)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal") as http:
            answer = await http.post("/ingest/shopify", content=raw, headers=shopify_headers(raw, delivery="dup-1"))
            assert answer.status_code == 200
    assert answer.json() == {"status": "duplicate"}
    assert len(sent.sent) == 1


async def test_a_signed_body_that_does_not_map_is_200_and_dead_lettered_naming_the_field(
    client: httpx.AsyncClient, sent: RecordingDeadLetters
) -> None:
    """A signed orders/create without checkout_token: 200 (no retry), raw body dead-lettered with the field."""
    raw = body({"id": 1, "total_price": "10.00", "currency": "EUR", "created_at": "2026-11-20T10:00:00+01:00"})
    answer = await client.post("/ingest/shopify", content=raw, headers=shopify_headers(raw, topic="orders/create"))
    assert answer.status_code == 200 and answer.json()["status"] == "dead_lettered"
    [letter] = published(sent, "dead-letter")
    assert letter["reason"] == "shopify orders/create: missing field 'checkout_token'"
    assert letter["original"] == raw.decode() and letter["source"] == "webhook"


async def test_unused_shopify_topic_is_200_skipped_and_counted_in_metrics(
    client: httpx.AsyncClient, sent: RecordingDeadLetters
) -> None:
    """products/update: 200, nothing published, counted in /metrics by format and type."""
    raw = body({"id": 1, "title": "Sac"})
    answer = await client.post("/ingest/shopify", content=raw, headers=shopify_headers(raw, topic="products/update"))
    assert answer.json() == {"status": "skipped", "type": "products/update"} and sent.sent == []
    metrics = (await client.get("/metrics")).text
    assert 'recovery_platform_events_skipped_total{format="shopify",type="products/update"} 1.0' in metrics


def stripe_headers(raw: bytes, *, at: int, secret: str = "whsec_test") -> dict[str, str]:
    return {"Stripe-Signature": stripe_signature(secret, raw, at), "Content-Type": "application/json"}


async def test_signed_stripe_failure_is_published_to_the_payment_topic(
    client: httpx.AsyncClient, sent: RecordingDeadLetters
) -> None:
    """payment_intent.payment_failed within the tolerance: published as payment.failed."""
    raw = body(STRIPE_PAYMENT_FAILED)
    answer = await client.post("/ingest/stripe", content=raw, headers=stripe_headers(raw, at=int(NOW.timestamp())))
    assert answer.status_code == 200
    [event] = published(sent, "payment-events")
    assert event["payment"]["reason"] == "insufficient_funds"


async def test_stripe_rotation_any_listed_v1_signature_is_enough(
    client: httpx.AsyncClient, sent: RecordingDeadLetters
) -> None:
    """During a secret rotation Stripe lists several v1 signatures: the one made with our secret suffices."""
    raw = body(STRIPE_PAYMENT_FAILED)
    at = int(NOW.timestamp())
    old = stripe_signature("whsec_old", raw, at).split(",")[1]
    current = stripe_signature("whsec_test", raw, at).split(",")[1]
    header = f"t={at},{old},{current},v0=abc"
    answer = await client.post("/ingest/stripe", content=raw, headers={"Stripe-Signature": header})
    assert answer.status_code == 200 and len(sent.sent) == 1


@pytest.mark.parametrize("offset", [-301, 301])
async def test_stripe_timestamp_outside_300_seconds_is_400(
    client: httpx.AsyncClient, sent: RecordingDeadLetters, offset: int
) -> None:
    """A correctly signed event more than 300 s old (or ahead) is refused with 400: a replay."""
    raw = body(STRIPE_PAYMENT_FAILED)
    answer = await client.post(
        "/ingest/stripe", content=raw, headers=stripe_headers(raw, at=int(NOW.timestamp()) + offset)
    )
    assert answer.status_code == 400 and sent.sent == []


async def test_stripe_signature_with_another_secret_is_401(
    client: httpx.AsyncClient, sent: RecordingDeadLetters
) -> None:
    """A fresh timestamp signed with the wrong secret is 401, not 400."""
    raw = body(STRIPE_PAYMENT_FAILED)
    answer = await client.post(
        "/ingest/stripe", content=raw, headers=stripe_headers(raw, at=int(NOW.timestamp()), secret="whsec_other")
    )
    assert answer.status_code == 401 and sent.sent == []


async def test_stripe_event_redelivered_is_a_duplicate(client: httpx.AsyncClient, sent: RecordingDeadLetters) -> None:
    """The same Stripe event id twice: published once."""
    raw = body(STRIPE_PAYMENT_FAILED)
    for _ in range(2):
        answer = await client.post("/ingest/stripe", content=raw, headers=stripe_headers(raw, at=int(NOW.timestamp())))
    assert answer.json() == {"status": "duplicate"} and len(sent.sent) == 1


async def test_woocommerce_creation_ping_is_200_and_publishes_nothing(
    client: httpx.AsyncClient, sent: RecordingDeadLetters
) -> None:
    """WooCommerce's form-encoded webhook_id ping when the webhook is created: 200, nothing published."""
    answer = await client.post(
        "/ingest/woocommerce", content=b"webhook_id=12", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 200 and sent.sent == []


async def test_signed_woocommerce_guest_order_is_published(
    client: httpx.AsyncClient, sent: RecordingDeadLetters
) -> None:
    """A guest's pending order: published as a checkout at payment, keyed by cart_hash."""
    raw = body(WOO_ORDER)
    answer = await client.post("/ingest/woocommerce", content=raw, headers=woo_headers(raw))
    assert answer.json() == {"status": "published", "events": 1}
    assert sent.sent[0][1] == "f2a9c1e0b6d84f0aa1bb"


async def test_woocommerce_cancelled_order_is_200_and_publishes_nothing(
    client: httpx.AsyncClient, sent: RecordingDeadLetters
) -> None:
    """A cancelled order is acknowledged and publishes nothing."""
    raw = body(variant(WOO_ORDER, status="cancelled"))
    answer = await client.post("/ingest/woocommerce", content=raw, headers=woo_headers(raw, delivery="w-c"))
    assert answer.json() == {"status": "published", "events": 0} and sent.sent == []


async def test_unconfigured_platform_endpoint_is_404(engine: AsyncEngine, sent: RecordingDeadLetters) -> None:
    """Without ingest.stripe.secret the Stripe endpoint does not exist."""
    config = Settings(security={"link_secret": "link-secret"}, ingest={"shopify": {"secret": "s"}})
    app = make_app(engine, config, sent)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal") as http:
        assert (await http.post("/ingest/stripe", content=b"{}")).status_code == 404
        assert (await http.post("/ingest/woocommerce", content=b"{}")).status_code == 404


async def test_a_body_above_the_limit_is_413_before_anything(engine: AsyncEngine, sent: RecordingDeadLetters) -> None:
    """A body larger than ingest.max_event_bytes is refused with 413."""
    app = make_app(engine, settings(max_event_bytes=2048), sent)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal") as http:
        raw = b"{" + b" " * 4096 + b"}"
        answer = await http.post("/ingest/shopify", content=raw, headers=shopify_headers(raw))
    assert answer.status_code == 413 and sent.sent == []


class FlakyPublisher(RecordingDeadLetters):
    """A broker that is down for the first send, then back."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def send_many(self, topic: str, messages: Any) -> None:
        if self.down:
            self.down = False
            raise KafkaUnavailableError("cannot publish: broker down")
        await super().send_many(topic, messages)


async def test_a_delivery_the_broker_could_not_take_is_503_and_its_retry_is_published(engine: AsyncEngine) -> None:
    """Broker down: 503 and the delivery is not remembered, so the platform's retry is published, not a duplicate."""
    flaky = FlakyPublisher()
    app = make_app(engine, settings(), flaky)
    raw = body(SHOPIFY_CHECKOUT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal") as http:
        first = await http.post("/ingest/shopify", content=raw, headers=shopify_headers(raw, delivery="retry-1"))
        retry = await http.post("/ingest/shopify", content=raw, headers=shopify_headers(raw, delivery="retry-1"))
    assert first.status_code == 503
    assert retry.json() == {"status": "published", "events": 1} and len(flaky.sent) == 1
