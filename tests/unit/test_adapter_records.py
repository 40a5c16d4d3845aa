"""Kafka records of each input format (CloudEvents structured and binary too) reach native events."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from recovery.adapters.base import Rejected, Skipped, Translated
from recovery.adapters.formats import header_map, translate_record
from recovery.events import Rejection, parse_event
from tests.platform_payloads import SHOPIFY_CHECKOUT, STRIPE_PAYMENT_FAILED, WOO_ORDER, body

NATIVE = {
    "type": "cart.updated",
    "occurred_at": "2026-11-20T09:00:00+01:00",
    "cart": {"currency": "EUR", "value": 10, "items": [{"sku": "A", "name": "A", "quantity": 1, "unit_price": 10}]},
}


def ce_headers(**attributes: str) -> dict[str, str]:
    """Binary-mode headers, as a Kafka record carries them."""
    return header_map([(f"ce_{name}", value.encode()) for name, value in attributes.items()])


def valid(outcome: Any) -> list[dict[str, Any]]:
    """The translated events, after checking each one validates."""
    assert isinstance(outcome, Translated), outcome
    for event in outcome.events:
        parsed = parse_event(json.dumps(event).encode())
        assert not isinstance(parsed, Rejection), parsed.reason
    return list(outcome.events)


def test_binary_cloudevent_with_native_data_takes_id_and_cart_from_the_headers() -> None:
    """ce_id is the dedup id and ce_subject the cart when data leaves them out."""
    headers = ce_headers(specversion="1.0", type="cart.updated", id="ce-1", source="/shop", subject="cart-9")
    [event] = valid(translate_record("cloudevents", body(NATIVE), headers))
    assert event["id"] == "ce-1" and event["cart_id"] == "cart-9"


def test_native_id_and_occurred_at_inside_data_win_over_the_envelope() -> None:
    """data.id and data.occurred_at are kept; the envelope's time is only a fallback."""
    headers = ce_headers(specversion="1.0", type="cart.updated", id="ce-2", source="/s", time="2026-01-01T00:00:00Z")
    data = {**NATIVE, "id": "native-2", "cart_id": "cart-2"}
    [event] = valid(translate_record("cloudevents", body(data), headers))
    assert (event["id"], event["occurred_at"]) == ("native-2", NATIVE["occurred_at"])


def test_structured_cloudevent_with_a_shopify_payload_uses_the_shopify_adapter() -> None:
    """type shopify.checkouts/update: data is the Shopify checkout."""
    document = {
        "specversion": "1.0",
        "type": "shopify.checkouts/update",
        "id": "x",
        "source": "/s",
        "data": SHOPIFY_CHECKOUT,
    }
    [event] = valid(translate_record("cloudevents", body(document), {}))
    assert event["cart_id"] == "123123123"


def test_structured_cloudevent_with_base64_data_is_decoded() -> None:
    """data_base64 carries the native event as base64 JSON."""
    encoded = base64.b64encode(body({**NATIVE, "cart_id": "c-64"})).decode()
    document = {"specversion": "1.0", "type": "cart.updated", "id": "b64", "source": "/s", "data_base64": encoded}
    [event] = valid(translate_record("cloudevents", body(document), {}))
    assert event["cart_id"] == "c-64"


def test_cloudevent_stripe_type_translates_the_stripe_event() -> None:
    """type stripe.payment_intent.payment_failed: data is the Stripe event."""
    document = {
        "specversion": "1.0",
        "type": "stripe.payment_intent.payment_failed",
        "id": "s",
        "source": "/s",
        "data": STRIPE_PAYMENT_FAILED,
    }
    [event] = valid(translate_record("cloudevents", body(document), {}))
    assert event["payment"]["reason"] == "insufficient_funds"


def test_cloudevent_with_a_bare_stripe_object_borrows_id_and_time() -> None:
    """data a bare PaymentIntent: the CloudEvent's id is the event id, its time the occurrence."""
    intent = STRIPE_PAYMENT_FAILED["data"]["object"]
    headers = ce_headers(
        specversion="1.0",
        type="stripe.payment_intent.payment_failed",
        id="ce-9",
        source="/psp",
        time="2026-11-20T10:00:00Z",
    )
    [event] = valid(translate_record("cloudevents", body(intent), headers))
    assert (event["id"], event["occurred_at"]) == ("stripe:ce-9", "2026-11-20T10:00:00+00:00")


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (body(NATIVE), {}, "cloudevents: missing attribute 'specversion'"),
        (body({"type": "cart.updated", "id": "x", "data": NATIVE}), {}, "cloudevents: missing attribute 'specversion'"),
        (body({"specversion": "1.0", "type": "magento.cart", "id": "x", "data": {}}), {}, "attribute 'type'"),
        (b"{oops", {}, "cloudevents: not JSON"),
    ],
)
def test_cloudevent_that_does_not_map_is_rejected_naming_the_attribute(
    value: bytes, headers: dict[str, str], reason: str
) -> None:
    """A record without specversion, or of an unknown type, is rejected with the attribute named."""
    outcome = translate_record("cloudevents", value, headers)
    assert isinstance(outcome, Rejected) and reason in outcome.reason


def test_shopify_record_reads_its_topic_from_a_header_or_a_field() -> None:
    """On Kafka the Shopify topic comes from the X-Shopify-Topic header or a ``topic`` field."""
    by_header = translate_record(
        "shopify", body(SHOPIFY_CHECKOUT), header_map([("X-Shopify-Topic", b"checkouts/update")])
    )
    by_field = translate_record("shopify", body({**SHOPIFY_CHECKOUT, "topic": "checkouts/update"}), {})
    assert valid(by_header) == valid(by_field)
    assert translate_record("shopify", body({"topic": "products/update"}), {}) == Skipped(
        format="shopify", type="products/update"
    )


def test_woocommerce_record_without_topic_is_read_as_an_order() -> None:
    """A WooCommerce order relayed to Kafka without its header is still an order."""
    [event] = valid(translate_record("woocommerce", body(WOO_ORDER), {}))
    assert event["checkout_step"] == "payment"


def test_a_header_that_is_not_utf8_is_ignored() -> None:
    """A binary header never breaks the record: it is left out."""
    assert header_map([("ce_id", b"\xff"), ("ce_type", b"cart.updated")]) == {"ce_type": "cart.updated"}
