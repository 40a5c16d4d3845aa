"""Platform payloads translate to native events the consumer's own models accept (pure, no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recovery.adapters import segment, shopify, stripe, woocommerce
from recovery.adapters.base import Outcome, Rejected, Skipped, Translated
from recovery.events import Event, Rejection, parse_event
from tests.platform_payloads import (
    SEGMENT_TRACK,
    SHOPIFY_CHECKOUT,
    SHOPIFY_ORDER,
    STRIPE_CHARGE_REFUNDED,
    STRIPE_PAYMENT_FAILED,
    STRIPE_SESSION_EXPIRED,
    WOO_ORDER,
    variant,
)


def natives(outcome: Outcome) -> list[Event]:
    """The translated events, each validated by the consumer's parser."""
    assert isinstance(outcome, Translated), outcome
    parsed = [parse_event(json.dumps(event).encode()) for event in outcome.events]
    for item in parsed:
        assert not isinstance(item, Rejection), item.reason
    return parsed  # type: ignore[return-value]


def one(outcome: Outcome) -> dict[str, Any]:
    """The single native event, validated, as JSON-mode data."""
    [event] = natives(outcome)
    return event.model_dump(mode="json")


# --- Shopify -------------------------------------------------------------------------------------------


def test_shopify_checkout_becomes_a_cart_with_restore_link_and_email_consent() -> None:
    """A Shopify checkout is a cart keyed by its token, restorable by its abandoned_checkout_url."""
    event = one(shopify.translate(SHOPIFY_CHECKOUT, "checkouts/update"))
    assert event["type"] == "cart.updated"
    assert event["cart_id"] == "123123123"
    assert event["cart"]["restore_url"].startswith("https://shop.example.com/")
    assert event["cart"]["value"] == "189.80"
    assert [(i["name"], i["quantity"]) for i in event["cart"]["items"]] == [("Sac en cuir", 1), ("Ceinture", 2)]
    assert event["customer"]["email"] == "claire.martin@example.com"
    assert event["customer"]["phone"] == "+33612345678"
    assert event["customer"]["consent"] == {"email": True, "sms": None, "phone": None}
    assert event["customer"]["locale"] == "fr-FR"


def test_shopify_checkout_without_email_still_tracks_the_cart() -> None:
    """A checkout before the shopper typed an email is a valid cart without contact (no message later)."""
    payload = variant(SHOPIFY_CHECKOUT, email=None, phone=None, customer=None, buyer_accepts_marketing=False)
    event = one(shopify.translate(payload, "checkouts/create"))
    assert event["cart_id"] == "123123123" and event["cart"]["items"]
    assert (event["customer"]["email"], event["customer"]["phone"], event["customer"]["consent"]) == (None, None, None)


def test_shopify_consent_comes_only_from_an_explicit_subscription() -> None:
    """Not accepting marketing and a not_subscribed customer give unknown consent (= none)."""
    payload = variant(
        SHOPIFY_CHECKOUT,
        buyer_accepts_marketing=False,
        customer={"id": 1, "email_marketing_consent": {"state": "not_subscribed"}},
    )
    event = one(shopify.translate(payload, "checkouts/update"))
    assert event["customer"]["consent"] is None


@pytest.mark.parametrize(
    ("changes", "step"),
    [
        ({"shipping_address": {"city": "Paris", "country": "FR"}}, "address"),
        (
            {"shipping_address": {"city": "Paris"}, "shipping_lines": [{"title": "Colissimo", "price": "6.90"}]},
            "shipping",
        ),
    ],
)
def test_shopify_checkout_progress_becomes_the_checkout_step(changes: dict[str, Any], step: str) -> None:
    """An address or a chosen shipping rate moves the cart to that checkout step, with the cart."""
    event = one(shopify.translate(variant(SHOPIFY_CHECKOUT, **changes), "checkouts/update"))
    assert event["type"] == "checkout.step" and event["checkout_step"] == step
    assert event["cart"]["items"]


def test_shopify_order_completes_its_checkouts_cart() -> None:
    """orders/create finds the cart through checkout_token and carries the order total."""
    event = one(shopify.translate(SHOPIFY_ORDER, "orders/create"))
    assert event["type"] == "order.completed" and event["cart_id"] == "123123123"
    assert event["order"] == {"id": "820982911946154508", "value": "189.80", "currency": "EUR", "cart_id": "123123123"}


def test_shopify_completed_checkout_publishes_nothing() -> None:
    """A checkout update after the purchase adds nothing: its order already ended the journey."""
    outcome = shopify.translate(variant(SHOPIFY_CHECKOUT, completed_at="2026-11-20T10:15:00+01:00"), "checkouts/update")
    assert outcome == Translated(events=())


@pytest.mark.parametrize(
    ("payload", "topic", "reason"),
    [
        (variant(SHOPIFY_CHECKOUT, token=None), "checkouts/update", "shopify checkouts/update: missing field 'token'"),
        (variant(SHOPIFY_CHECKOUT, total_price=...), "checkouts/create", "missing field 'total_price'"),
        (
            variant(SHOPIFY_ORDER, checkout_token=None),
            "orders/create",
            "shopify orders/create: missing field 'checkout_token'",
        ),
        (SHOPIFY_CHECKOUT, None, "shopify: missing topic"),
    ],
)
def test_shopify_payload_without_a_key_field_is_rejected_naming_it(
    payload: Any, topic: str | None, reason: str
) -> None:
    """A payload missing the field that finds the cart is rejected with the format and the field."""
    outcome = shopify.translate(payload, topic)
    assert isinstance(outcome, Rejected) and reason in outcome.reason


def test_shopify_unused_topic_is_skipped() -> None:
    """products/update is not ours: skipped (counted), never dead-lettered."""
    assert shopify.translate({"id": 1}, "products/update") == Skipped(format="shopify", type="products/update")


# --- Stripe --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "decline_code", "reason"),
    [
        ("card_declined", "insufficient_funds", "insufficient_funds"),
        ("authentication_required", None, "authentication_failed"),
        ("card_declined", "authentication_required", "authentication_failed"),
        ("payment_intent_authentication_failure", None, "authentication_failed"),
        ("expired_card", None, "expired_card"),
        ("card_declined", "generic_decline", "card_declined"),
        ("card_declined", "stolen_card", "card_declined"),
        ("incorrect_cvc", None, "card_declined"),
        ("processing_error", None, "processing_error"),
        ("card_declined", "try_again_later", "processing_error"),
        ("amount_too_small", None, "other"),
        (None, None, "other"),
    ],
)
def test_stripe_error_codes_map_to_the_contracts_payment_reasons(
    code: str | None, decline_code: str | None, reason: str
) -> None:
    """Stripe's decline_code (or, failing that, its code) decides the payment reason; unknown is other."""
    assert stripe.payment_reason(code, decline_code) == reason


def test_stripe_payment_failure_becomes_payment_failed_with_amount_and_restore_link() -> None:
    """A failed PaymentIntent is a payment.failed in major units, with the raw code and the shop's link."""
    event = one(stripe.translate(STRIPE_PAYMENT_FAILED))
    assert event["type"] == "payment.failed" and event["cart_id"] == "123123123"
    assert event["id"] == "stripe:evt_3MtwBwLkdIwHu7ix0SNM0dXb"
    assert event["payment"] == {
        "reason": "insufficient_funds",
        "method": "card",
        "provider_code": "insufficient_funds",
        "amount": "189.80",
    }
    assert event["cart"]["restore_url"] == "https://shop.example.com/cart/restore/123123123"
    assert event["customer"] == {**event["customer"], "email": "claire.martin@example.com", "first_name": "Claire"}
    assert event["occurred_at"] == "2025-11-20T09:00:00Z"


def test_stripe_zero_decimal_currency_is_not_divided() -> None:
    """JPY has no minor unit: 5000 is 5000 yen."""
    assert stripe.major_units(5000, "JPY", "amount") == "5000"
    assert stripe.major_units(1999, "EUR", "amount") == "19.99"


def test_stripe_event_without_cart_id_is_rejected_naming_the_metadata_field() -> None:
    """A PaymentIntent created without metadata.cart_id cannot find its cart: rejected, field named."""
    payload = json.loads(json.dumps(STRIPE_PAYMENT_FAILED))
    payload["data"]["object"]["metadata"] = {}
    outcome = stripe.translate(payload)
    assert outcome == Rejected(
        reason="stripe payment_intent.payment_failed: missing field 'data.object.metadata.cart_id'"
    )


def test_stripe_expired_checkout_session_is_a_cart_left_at_payment() -> None:
    """checkout.session.expired: the shopper reached payment and left."""
    event = one(stripe.translate(STRIPE_SESSION_EXPIRED))
    assert event["type"] == "checkout.step" and event["checkout_step"] == "payment"
    assert event["cart_id"] == "cart-77" and event["customer"]["email"] == "claire.martin@example.com"


def test_stripe_refund_deducts_the_newest_refund_from_the_order() -> None:
    """charge.refunded carries the refund just made (not the running total) against the shop's order id."""
    event = one(stripe.translate(STRIPE_CHARGE_REFUNDED))
    assert event["type"] == "order.refunded"
    assert event["order"] == {"id": "820982911946154508", "value": "49.90", "currency": "EUR", "cart_id": "123123123"}


def test_stripe_unused_type_is_skipped() -> None:
    """customer.created is not ours: skipped."""
    assert stripe.translate({"id": "evt_1", "type": "customer.created", "data": {"object": {}}}) == Skipped(
        format="stripe", type="customer.created"
    )


# --- WooCommerce ---------------------------------------------------------------------------------------


def test_woocommerce_pending_guest_order_is_a_cart_at_payment() -> None:
    """A guest's pending order is a checkout at the payment step, keyed by cart_hash, no customer id."""
    event = one(woocommerce.translate(WOO_ORDER, "order.created"))
    assert event["type"] == "checkout.step" and event["checkout_step"] == "payment"
    assert event["cart_id"] == "f2a9c1e0b6d84f0aa1bb"
    assert event["cart"]["restore_url"].startswith("https://shop.example.com/checkout/order-pay/727/")
    assert event["cart"]["items"][0]["unit_price"] == "24.95"
    assert event["customer"]["id"] is None
    assert event["customer"]["email"] == "lucas.bernard@example.com"
    assert event["customer"]["phone"] == "+33698765432"
    assert event["customer"]["consent"]["email"] is True
    assert event["occurred_at"] == "2026-11-20T08:05:00Z"


def test_woocommerce_order_without_cart_hash_is_keyed_by_order_key() -> None:
    """No cart_hash (an order made in the admin): the cart is ``wc-`` + order_key."""
    event = one(woocommerce.translate(variant(WOO_ORDER, cart_hash=""), "order.created"))
    assert event["cart_id"] == "wc-wc_order_58d2d042d1d"


@pytest.mark.parametrize(
    ("status", "native_type"),
    [
        ("failed", "payment.failed"),
        ("processing", "order.completed"),
        ("completed", "order.completed"),
        ("refunded", "order.refunded"),
    ],
)
def test_woocommerce_status_decides_the_native_type(status: str, native_type: str) -> None:
    """Each order status that matters to a flow becomes its native event."""
    event = one(woocommerce.translate(variant(WOO_ORDER, status=status), "order.updated"))
    assert event["type"] == native_type


def test_woocommerce_failed_payment_reason_is_other_with_the_method() -> None:
    """WooCommerce gives no decline code: the reason is other, the method is the gateway."""
    event = one(woocommerce.translate(variant(WOO_ORDER, status="failed"), "order.updated"))
    assert event["payment"] == {"reason": "other", "method": "stripe", "provider_code": None, "amount": None}


def test_woocommerce_processing_then_completed_is_one_purchase() -> None:
    """Both paid statuses give the same event id, so the second is a duplicate, not a second order."""
    first = one(woocommerce.translate(variant(WOO_ORDER, status="processing"), "order.updated"))
    second = one(
        woocommerce.translate(
            variant(WOO_ORDER, status="completed", date_modified_gmt="2026-11-21T08:00:00"), "order.updated"
        )
    )
    assert first["id"] == second["id"]


def test_woocommerce_refund_value_is_the_sum_of_refunds() -> None:
    """A refunded order deducts what its refunds gave back."""
    payload = variant(WOO_ORDER, status="refunded", refunds=[{"id": 1, "reason": "", "total": "-59.90"}])
    event = one(woocommerce.translate(payload, "order.updated"))
    assert event["order"]["value"] == "59.90"


@pytest.mark.parametrize("status", ["cancelled", "on-hold", "checkout-draft"])
def test_woocommerce_cancelled_order_publishes_nothing(status: str) -> None:
    """A cancelled (or waiting) order changes no journey."""
    assert woocommerce.translate(variant(WOO_ORDER, status=status), "order.updated") == Translated(events=())


def test_woocommerce_order_without_keys_is_rejected_naming_the_field() -> None:
    """No cart_hash and no order_key: nothing finds the cart."""
    outcome = woocommerce.translate(variant(WOO_ORDER, cart_hash=None, order_key=None), "order.updated")
    assert outcome == Rejected(reason="woocommerce order.updated: missing field 'order_key'")


def test_woocommerce_unused_topic_is_skipped() -> None:
    """product.updated is not ours."""
    assert isinstance(woocommerce.translate({"id": 1}, "product.updated"), Skipped)


# --- Segment -------------------------------------------------------------------------------------------


def test_segment_cart_viewed_is_the_whole_cart() -> None:
    """Cart Viewed carries the products: a cart.updated with consent from the traits."""
    event = one(segment.translate(SEGMENT_TRACK))
    assert event["type"] == "cart.updated" and event["cart_id"] == "seg-cart-1"
    assert event["cart"]["value"] == "149.9" and event["cart"]["items"][0]["url"] == "https://shop.example.com/p/sac"
    assert event["customer"]["consent"]["email"] is True and event["customer"]["timezone"] == "Europe/Paris"


@pytest.mark.parametrize(
    ("name", "properties", "expected"),
    [
        ("Product Added", {"cart_id": "c", "product_id": "p", "price": 3}, ("checkout.step", "cart")),
        (
            "Checkout Started",
            {"checkout_id": "c", "currency": "EUR", "total": 10, "products": []},
            ("checkout.step", "account"),
        ),
        ("Checkout Step Viewed", {"checkout_id": "c", "step": 2}, ("checkout.step", "address")),
        (
            "Checkout Step Completed",
            {"checkout_id": "c", "step": 3, "shipping_method": "Colissimo"},
            ("checkout.step", "payment"),
        ),
        (
            "Payment Info Entered",
            {"checkout_id": "c", "step": 4, "payment_method": "card"},
            ("checkout.step", "payment"),
        ),
        (
            "Order Completed",
            {"checkout_id": "c", "order_id": "o-1", "total": 30, "currency": "EUR"},
            ("order.completed", None),
        ),
        (
            "Order Refunded",
            {"cart_id": "c", "order_id": "o-1", "total": 30, "currency": "EUR"},
            ("order.refunded", None),
        ),
    ],
)
def test_segment_ecommerce_events_map_to_native_types(
    name: str, properties: dict[str, Any], expected: tuple[str, str | None]
) -> None:
    """Each spec v2 event used by a flow becomes its native type (and step)."""
    event = one(segment.translate(variant(SEGMENT_TRACK, event=name, properties=properties)))
    assert (event["type"], event.get("checkout_step")) == expected
    assert event["cart_id"] == "c"


def test_segment_event_without_cart_or_checkout_id_is_rejected() -> None:
    """No cart_id and no checkout_id: the reason names properties.cart_id."""
    outcome = segment.translate(variant(SEGMENT_TRACK, properties={"currency": "EUR", "products": []}))
    assert outcome == Rejected(reason="segment Cart Viewed: missing field 'properties.cart_id'")


@pytest.mark.parametrize(
    "payload", [variant(SEGMENT_TRACK, event="Product Viewed"), variant(SEGMENT_TRACK, type="identify")]
)
def test_segment_calls_we_do_not_use_are_skipped(payload: dict[str, Any]) -> None:
    """Product Viewed and identify calls are skipped."""
    assert isinstance(segment.translate(payload), Skipped)
