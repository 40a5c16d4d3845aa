"""Segment track calls of the e-commerce spec v2 to native events.

cart_id is ``properties.cart_id``, else ``properties.checkout_id``. Cart Viewed and Checkout Started carry
the whole cart (``products``); Product Added/Removed carry one product, so they mark activity (step
``cart``) without replacing the cart's items.
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
    amount,
    currency,
    customer,
    dig,
    envelope,
    need,
    need_text,
    rejected,
    section,
    text,
    with_offset,
)

FORMAT = "segment"
STEP_BY_NUMBER = {1: "account", 2: "address", 3: "shipping", 4: "payment", 5: "review"}
ACTIVITY = frozenset({"Product Added", "Product Removed"})
WHOLE_CART = frozenset({"Cart Viewed", "Checkout Started"})
STEPS = frozenset({"Checkout Step Viewed", "Checkout Step Completed", "Payment Info Entered"})
ORDERS = frozenset({"Order Completed", "Order Refunded"})


def translate(payload: Any, topic: str | None = None) -> Outcome:
    """One Segment track call (its ``event`` names the type; ``topic`` is ignored)."""
    if not isinstance(payload, dict):
        return Rejected(reason="segment: body is not a JSON object")
    kind = payload.get("event")
    if payload.get("type", "track") != "track" or not isinstance(kind, str):
        return Skipped(format=FORMAT, type=str(payload.get("type") or "(none)"))
    if kind not in ACTIVITY | WHOLE_CART | STEPS | ORDERS:
        return Skipped(format=FORMAT, type=kind)
    try:
        return Translated(events=(_translate(payload, kind),))
    except MissingField as exc:
        return rejected(FORMAT, kind, exc)


def _translate(call: dict[str, Any], kind: str) -> dict[str, Any]:
    props = section(call, "properties")
    cart_id = _cart_id(props)
    message_id = need_text(call, "messageId")
    common: dict[str, Any] = {
        "id": f"segment:{message_id}",
        "occurred_at": with_offset(call.get("timestamp") or call.get("originalTimestamp"), "timestamp"),
        "cart_id": cart_id,
        "customer": _customer(call),
    }
    if kind in ACTIVITY:
        return envelope(type="checkout.step", checkout_step="cart", **common)
    if kind == "Cart Viewed":
        return envelope(type="cart.updated", cart=_cart(props), **common)
    if kind == "Checkout Started":
        return envelope(type="checkout.step", checkout_step="account", cart=_cart(props), **common)
    if kind in STEPS:
        return envelope(type="checkout.step", checkout_step=_step(kind, props), **common)
    order = {
        "id": need_text(props, "order_id") if "order_id" in props else _missing("properties.order_id"),
        "value": _total(props),
        "currency": currency(props, "currency") if props.get("currency") else _missing("properties.currency"),
        "cart_id": cart_id,
    }
    kind_native = "order.completed" if kind == "Order Completed" else "order.refunded"
    return envelope(type=kind_native, order=order, **common)


def _missing(path: str) -> Any:
    raise MissingField(path)


def _cart_id(props: dict[str, Any]) -> str:
    for key in ("cart_id", "checkout_id"):
        value = props.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    raise MissingField("properties.cart_id")


def _step(kind: str, props: dict[str, Any]) -> str:
    if kind == "Payment Info Entered" or props.get("payment_method"):
        return "payment"
    number = props.get("step")
    if isinstance(number, bool) or not isinstance(number, int) or number not in STEP_BY_NUMBER:
        raise MissingField("properties.step", "not a step number 1-5 in")
    # A completed step means the shopper is at the next one.
    reached = number + 1 if kind == "Checkout Step Completed" else number
    return STEP_BY_NUMBER[min(reached, 5)]


def _total(props: dict[str, Any]) -> str:
    for key in ("total", "revenue", "value"):
        if props.get(key) is not None:
            return amount(props[key], f"properties.{key}")
    raise MissingField("properties.total")


def _cart(props: dict[str, Any]) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for index, product in enumerate(props.get("products") or []):
        where = f"properties.products.{index}"
        if not isinstance(product, dict):
            raise MissingField(where)
        quantity = product.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise MissingField(f"{where}.quantity")
        item = {
            "sku": str(product.get("sku") or product.get("product_id") or "")[:256],
            "name": str(need(product, "name"))[:1000],
            "quantity": quantity,
            "unit_price": amount(need(product, "price"), f"{where}.price"),
            "url": text(product.get("url"), 2000),
            "image_url": text(product.get("image_url"), 2000),
        }
        items.append({key: value for key, value in item.items() if value is not None})
    value = _total(props) if any(props.get(k) is not None for k in ("total", "revenue", "value")) else None
    if value is None:
        value = str(sum((Decimal(i["unit_price"]) * i["quantity"] for i in items), Decimal(0)))
    cart = {
        "currency": currency(props, "currency") if props.get("currency") else _missing("properties.currency"),
        "value": value,
        "items": items,
        "restore_url": text(props.get("url"), 2000),
    }
    return {key: value for key, value in cart.items() if value is not None}


def _customer(call: dict[str, Any]) -> dict[str, Any] | None:
    traits = section(call, "context.traits")
    consent = traits.get("email_consent")
    return customer(
        id=call.get("userId"),
        email=traits.get("email"),
        phone_number=traits.get("phone"),
        first_name=traits.get("first_name") or traits.get("firstName"),
        locale=dig(call, "context.locale"),
        timezone=dig(call, "context.timezone"),
        consent={"email": consent if isinstance(consent, bool) else None},
    )
