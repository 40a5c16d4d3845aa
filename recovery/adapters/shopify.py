"""Shopify webhooks (checkouts/create, checkouts/update, orders/create) to native events.

cart_id is the checkout ``token``; an order finds its cart through ``checkout_token``. A checkout with a
shipping rate chosen is at the ``shipping`` step, one with an address at ``address``, else it is a cart.
"""

from __future__ import annotations

from typing import Any

from recovery.adapters.base import (
    MissingField,
    Outcome,
    Rejected,
    Skipped,
    Translated,
    amount,
    currency,
    customer,
    dig,
    envelope,
    need,
    need_amount,
    need_text,
    rejected,
    section,
    text,
    with_offset,
)

FORMAT = "shopify"
CHECKOUT_TOPICS = frozenset({"checkouts/create", "checkouts/update"})
ORDER_TOPIC = "orders/create"


def translate(payload: Any, topic: str | None) -> Outcome:
    """One Shopify webhook body (``topic`` from ``X-Shopify-Topic``) as native events."""
    if not topic:
        return Rejected(reason="shopify: missing topic (X-Shopify-Topic header, 'topic' field or Kafka header)")
    if topic not in CHECKOUT_TOPICS and topic != ORDER_TOPIC:
        return Skipped(format=FORMAT, type=topic)
    if not isinstance(payload, dict):
        return Rejected(reason=f"shopify {topic}: body is not a JSON object")
    try:
        if topic == ORDER_TOPIC:
            return Translated(events=(_order(payload),))
        if payload.get("completed_at"):
            return Translated(events=())  # its order says it all: orders/create ends the journey
        return Translated(events=(_checkout(payload),))
    except MissingField as exc:
        return rejected(FORMAT, topic, exc)


def _checkout(checkout: dict[str, Any]) -> dict[str, Any]:
    token = need_text(checkout, "token")
    updated_at = with_offset(checkout.get("updated_at") or checkout.get("created_at"), "updated_at")
    cart = {
        "currency": currency(checkout, "presentment_currency" if checkout.get("presentment_currency") else "currency"),
        "value": need_amount(checkout, "total_price"),
        "items": [_item(line, index) for index, line in enumerate(checkout.get("line_items") or [])],
        "restore_url": text(checkout.get("abandoned_checkout_url"), 2000),
    }
    shipping = [line for line in checkout.get("shipping_lines") or [] if isinstance(line, dict)]
    if shipping and shipping[0].get("price") is not None:
        cart["shipping_cost"] = amount(shipping[0]["price"], "shipping_lines.0.price")
    cart = {key: value for key, value in cart.items() if value is not None}
    step = "shipping" if shipping else "address" if checkout.get("shipping_address") else None
    fields: dict[str, Any] = {"cart": cart, "store": None, "customer": _customer(checkout)}
    if step:
        fields["checkout_step"] = step
    return envelope(
        id=f"shopify:checkout:{token}:{updated_at}",
        type="checkout.step" if step else "cart.updated",
        occurred_at=updated_at,
        cart_id=token,
        **fields,
    )


def _item(line: Any, index: int) -> dict[str, Any]:
    where = f"line_items.{index}"
    if not isinstance(line, dict):
        raise MissingField(where)
    return {
        "sku": str(line.get("sku") or line.get("variant_id") or line.get("product_id") or "")[:256],
        "name": str(need(line, "title"))[:1000],
        "quantity": _quantity(line, where),
        "unit_price": amount(need(line, "price"), f"{where}.price"),
    }


def _quantity(line: dict[str, Any], where: str) -> int:
    value = line.get("quantity")
    if isinstance(value, bool) or not isinstance(value, int):
        raise MissingField(f"{where}.quantity")
    return value


def _customer(document: dict[str, Any]) -> dict[str, Any] | None:
    """The buyer: checkout-level contact first, then the customer record."""
    person = section(document, "customer")
    email_state = dig(person, "email_marketing_consent.state")
    sms_state = dig(person, "sms_marketing_consent.state")
    email_consent = document.get("buyer_accepts_marketing")
    sms_consent = document.get("buyer_accepts_sms_marketing")
    return customer(
        id=person.get("id"),
        email=document.get("email") or document.get("contact_email") or person.get("email"),
        phone_number=document.get("sms_marketing_phone") or document.get("phone") or person.get("phone"),
        first_name=person.get("first_name") or dig(document, "billing_address.first_name"),
        locale=document.get("customer_locale"),
        consent={
            "email": True if email_consent is True or email_state == "subscribed" else None,
            "sms": True if sms_consent is True or sms_state == "subscribed" else None,
        },
    )


def _order(order: dict[str, Any]) -> dict[str, Any]:
    order_id = need_text(order, "id")
    cart_id = need_text(order, "checkout_token")
    value = order.get("current_total_price") or order.get("total_price")
    return envelope(
        id=f"shopify:order:{order_id}",
        type="order.completed",
        occurred_at=with_offset(order.get("processed_at") or order.get("created_at"), "created_at"),
        cart_id=cart_id,
        customer=_customer(order),
        order={
            "id": order_id,
            "value": amount(value, "total_price"),
            "currency": currency(order, "currency"),
            "cart_id": cart_id,
        },
    )
