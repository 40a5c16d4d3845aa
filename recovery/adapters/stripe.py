"""Stripe events (payment_intent.payment_failed, checkout.session.expired, charge.refunded) to native events.

The cart is ``data.object.metadata.cart_id`` (set by the shop when it creates the PaymentIntent or the
Checkout Session); Stripe carries no marketing consent. Amounts are in the currency's minor unit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from recovery.adapters.base import (
    MissingField,
    Outcome,
    Rejected,
    Skipped,
    Translated,
    customer,
    dig,
    envelope,
    need,
    need_text,
    rejected,
    section,
    text,
    utc_from_unix,
)

FORMAT = "stripe"
PAYMENT_FAILED = "payment_intent.payment_failed"
SESSION_EXPIRED = "checkout.session.expired"
CHARGE_REFUNDED = "charge.refunded"
USED = frozenset({PAYMENT_FAILED, SESSION_EXPIRED, CHARGE_REFUNDED})

# Stripe's zero-decimal and three-decimal currencies (https://docs.stripe.com/currencies).
ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])

# decline_code (the issuer's answer) first, then the error code: Stripe's documented values.
REASONS: dict[str, str] = {
    "insufficient_funds": "insufficient_funds",
    "withdrawal_count_limit_exceeded": "insufficient_funds",
    "card_velocity_exceeded": "insufficient_funds",
    "expired_card": "expired_card",
    "invalid_expiry_month": "expired_card",
    "invalid_expiry_year": "expired_card",
    "authentication_required": "authentication_failed",
    "authentication_not_handled": "authentication_failed",
    "payment_intent_authentication_failure": "authentication_failed",
    "setup_intent_authentication_failure": "authentication_failed",
    "processing_error": "processing_error",
    "issuer_not_available": "processing_error",
    "reenter_transaction": "processing_error",
    "try_again_later": "processing_error",
    "card_declined": "card_declined",
    "generic_decline": "card_declined",
    "do_not_honor": "card_declined",
    "do_not_try_again": "card_declined",
    "lost_card": "card_declined",
    "stolen_card": "card_declined",
    "pickup_card": "card_declined",
    "restricted_card": "card_declined",
    "fraudulent": "card_declined",
    "card_not_supported": "card_declined",
    "currency_not_supported": "card_declined",
    "transaction_not_allowed": "card_declined",
    "incorrect_cvc": "card_declined",
    "invalid_cvc": "card_declined",
    "incorrect_number": "card_declined",
    "invalid_number": "card_declined",
    "incorrect_zip": "card_declined",
}


def payment_reason(code: str | None, decline_code: str | None) -> str:
    """The contract's payment reason for Stripe's ``last_payment_error`` codes (``other`` when unknown)."""
    for candidate in (decline_code, code):
        if candidate and candidate in REASONS:
            return REASONS[candidate]
    return "other"


def major_units(minor: Any, currency_code: str, path: str) -> str:
    """An amount in the currency's major unit, as exact text (``1999`` EUR → ``19.99``)."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise MissingField(path)
    exponent = 0 if currency_code in ZERO_DECIMAL else 3 if currency_code in THREE_DECIMAL else 2
    return str(Decimal(minor).scaleb(-exponent))


def translate(payload: Any, topic: str | None = None) -> Outcome:
    """One Stripe event (the webhook body) as native events; its ``type`` decides, ``topic`` is ignored."""
    if not isinstance(payload, dict):
        return Rejected(reason="stripe: body is not a JSON object")
    kind = payload.get("type")
    if not isinstance(kind, str) or not kind:
        return Rejected(reason="stripe: missing field 'type'")
    if kind not in USED:
        return Skipped(format=FORMAT, type=kind)
    try:
        event_id = need_text(payload, "id")
        obj = need(payload, "data.object")
        cart_id = _cart_id(obj)
        at = utc_from_unix(payload.get("created"), "created")
        if kind == PAYMENT_FAILED:
            return Translated(events=(_payment_failed(event_id, at, cart_id, obj),))
        if kind == SESSION_EXPIRED:
            return Translated(events=(_session_expired(event_id, at, cart_id, obj),))
        return Translated(events=(_refunded(event_id, at, cart_id, obj),))
    except MissingField as exc:
        return rejected(FORMAT, kind, exc)


def _cart_id(obj: Any) -> str:
    try:
        return need_text(obj, "metadata.cart_id")
    except MissingField as exc:
        raise MissingField("data.object.metadata.cart_id") from exc


def _payment_failed(event_id: str, at: str, cart_id: str, intent: dict[str, Any]) -> dict[str, Any]:
    error = section(intent, "last_payment_error")
    code, decline = text(error.get("code"), 128), text(error.get("decline_code"), 128)
    code_of_currency = str(need(intent, "currency")).upper()
    method = dig(error, "payment_method.type") or next(iter(intent.get("payment_method_types") or []), None)
    payment = {
        "reason": payment_reason(code, decline),
        "method": text(method, 64),
        "provider_code": decline or code,
        "amount": major_units(intent.get("amount"), code_of_currency, "data.object.amount"),
    }
    billing = dig(error, "payment_method.billing_details") or {}
    return envelope(
        id=f"stripe:{event_id}",
        type="payment.failed",
        occurred_at=at,
        cart_id=cart_id,
        payment={key: value for key, value in payment.items() if value is not None},
        customer=customer(
            email=intent.get("receipt_email") or dig(billing, "email"),
            phone_number=dig(billing, "phone"),
            first_name=_first_name(dig(billing, "name")),
        ),
        cart=_cart_with_restore(intent, code_of_currency),
    )


def _cart_with_restore(obj: dict[str, Any], code: str) -> dict[str, Any] | None:
    """A restore link travels in a cart: only when the shop gave ``metadata.restore_url``.

    Stripe knows no items, so the cart is one line for the payment itself (its description and amount).
    """
    restore = text(dig(obj, "metadata.restore_url"), 2000)
    if restore is None:
        return None
    value = major_units(obj.get("amount"), code, "data.object.amount")
    line = {"sku": str(obj.get("id") or "payment")[:256], "name": text(obj.get("description"), 1000) or "Payment"}
    return {
        "currency": code,
        "value": value,
        "restore_url": restore,
        "items": [{**line, "quantity": 1, "unit_price": value}],
    }


def _session_expired(event_id: str, at: str, cart_id: str, session: dict[str, Any]) -> dict[str, Any]:
    details = section(session, "customer_details")
    return envelope(
        id=f"stripe:{event_id}",
        type="checkout.step",
        occurred_at=at,
        cart_id=cart_id,
        checkout_step="payment",
        customer=customer(
            email=details.get("email") or session.get("customer_email"),
            phone_number=details.get("phone"),
            first_name=_first_name(details.get("name")),
            locale=session.get("locale") if session.get("locale") not in (None, "auto") else None,
        ),
    )


def _refunded(event_id: str, at: str, cart_id: str, charge: dict[str, Any]) -> dict[str, Any]:
    code = str(need(charge, "currency")).upper()
    refunds = dig(charge, "refunds.data") or []
    latest = refunds[0] if refunds and isinstance(refunds[0], dict) else None
    # Each partial refund sends charge.refunded with the running total: the newest refund is this one.
    minor = latest.get("amount") if latest else charge.get("amount_refunded")
    order_id = dig(charge, "metadata.order_id") or charge.get("payment_intent") or need_text(charge, "id")
    return envelope(
        id=f"stripe:{event_id}",
        type="order.refunded",
        occurred_at=at,
        cart_id=cart_id,
        order={
            "id": str(order_id)[:128],
            "value": major_units(minor, code, "data.object.amount_refunded"),
            "currency": code,
            "cart_id": cart_id,
        },
    )


def _first_name(name: Any) -> str | None:
    full = text(name)
    return full.split()[0] if full else None
