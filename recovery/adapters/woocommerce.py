"""WooCommerce order webhooks (order.created, order.updated) to native events, by the order's status.

cart_id is the order's ``cart_hash``, else ``"wc-" + order_key``. ``pending`` is a checkout at the payment
step, ``failed`` a payment failure, ``processing``/``completed`` an order, ``refunded`` a refund;
``cancelled`` (and the statuses no flow uses) publish nothing.
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
    need_amount,
    need_text,
    rejected,
    section,
    text,
    with_offset,
)

FORMAT = "woocommerce"
ORDER_TOPICS = frozenset({"order.created", "order.updated"})
PAID = frozenset({"processing", "completed"})
QUIET = frozenset({"cancelled", "on-hold", "checkout-draft", "trash"})  # nothing a flow acts on
_YES = frozenset({"yes", "1", "true", "on", "subscribed"})


def translate(payload: Any, topic: str | None = None) -> Outcome:
    """One WooCommerce order (``topic`` from ``X-WC-Webhook-Topic``; absent on Kafka: an order is assumed)."""
    kind = topic or "order.updated"
    if kind not in ORDER_TOPICS:
        return Skipped(format=FORMAT, type=kind)
    if not isinstance(payload, dict):
        return Rejected(reason=f"woocommerce {kind}: body is not a JSON object")
    try:
        status = need_text(payload, "status")
        if status in QUIET:
            return Translated(events=())
        if status == "pending":
            return Translated(events=(_at_payment(payload),))
        if status == "failed":
            return Translated(events=(_failed(payload),))
        if status in PAID:
            return Translated(events=(_completed(payload),))
        if status == "refunded":
            return Translated(events=(_refunded(payload),))
        return Skipped(format=FORMAT, type=f"{kind}:{status}")
    except MissingField as exc:
        return rejected(FORMAT, kind, exc)


def cart_id_of(order: dict[str, Any]) -> str:
    """The contract's key: ``cart_hash``, else ``wc-`` + ``order_key``."""
    cart_hash = text(order.get("cart_hash"), 128)
    return cart_hash or "wc-" + need_text(order, "order_key")


def _occurred_at(order: dict[str, Any]) -> str:
    when = order.get("date_modified_gmt") or order.get("date_created_gmt")
    return with_offset(when, "date_modified_gmt")


def _common(source: dict[str, Any], label: str, **fields: Any) -> dict[str, Any]:
    order_id = need_text(source, "id")
    return envelope(
        id=f"woocommerce:{order_id}:{label}",
        occurred_at=_occurred_at(source),
        cart_id=cart_id_of(source),
        customer=_customer(source),
        **fields,
    )


def _customer(order: dict[str, Any]) -> dict[str, Any] | None:
    billing = section(order, "billing")
    consent = _meta(order, "marketing_consent")
    return customer(
        id=order.get("customer_id"),  # 0 is a guest: no id
        email=billing.get("email"),
        phone_number=billing.get("phone"),
        first_name=billing.get("first_name"),
        consent={"email": None if consent is None else str(consent).strip().lower() in _YES},
    )


def _meta(order: dict[str, Any], key: str) -> Any:
    for entry in order.get("meta_data") or []:
        if isinstance(entry, dict) and entry.get("key") == key:
            return entry.get("value")
    return None


def _cart(order: dict[str, Any]) -> dict[str, Any]:
    items = []
    for index, line in enumerate(order.get("line_items") or []):
        where = f"line_items.{index}"
        if not isinstance(line, dict):
            raise MissingField(where)
        quantity = line.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise MissingField(f"{where}.quantity")
        item = {
            "sku": str(line.get("sku") or line.get("product_id") or "")[:256],
            "name": str(need(line, "name"))[:1000],
            "quantity": quantity,
            "unit_price": amount(need(line, "price"), f"{where}.price"),
            "image_url": text(dig(line, "image.src"), 2000),
        }
        items.append({key: value for key, value in item.items() if value is not None})
    cart = {
        "currency": currency(order, "currency"),
        "value": need_amount(order, "total"),
        "items": items,
        "restore_url": text(order.get("payment_url"), 2000),
        "shipping_cost": amount(order["shipping_total"], "shipping_total") if order.get("shipping_total") else None,
    }
    return {key: value for key, value in cart.items() if value is not None}


def _at_payment(order: dict[str, Any]) -> dict[str, Any]:
    stamp = _occurred_at(order)
    return _common(order, f"pending:{stamp}", type="checkout.step", checkout_step="payment", cart=_cart(order))


def _failed(order: dict[str, Any]) -> dict[str, Any]:
    stamp = _occurred_at(order)
    payment = {"reason": "other", "method": text(order.get("payment_method"), 64) or None}
    payment = {key: value for key, value in payment.items() if value is not None}
    return _common(order, f"failed:{stamp}", type="payment.failed", payment=payment, cart=_cart(order))


def _order(order: dict[str, Any], value: str) -> dict[str, Any]:
    return {
        "id": need_text(order, "id"),
        "value": value,
        "currency": currency(order, "currency"),
        "cart_id": cart_id_of(order),
    }


def _completed(order: dict[str, Any]) -> dict[str, Any]:
    # processing then completed is one purchase: the same event id, so the second is a duplicate.
    return _common(order, "completed", type="order.completed", order=_order(order, need_amount(order, "total")))


def _refunded(order: dict[str, Any]) -> dict[str, Any]:
    refunds = [entry for entry in order.get("refunds") or [] if isinstance(entry, dict)]
    total = sum((abs(Decimal(amount(entry.get("total"), "refunds.total"))) for entry in refunds), Decimal(0))
    value = str(total) if refunds else need_amount(order, "total")
    return _common(order, "refunded", type="order.refunded", order=_order(order, value))
