"""The realistic ingest mix of issue 25: N events over N/5 carts, each type on its contract topic.

Per cart: four ``cart.updated`` then either ``order.completed`` (3 carts in 4) or ``payment.failed``
(1 in 4): 80 % / 15 % / 5 % of the events. Carts are interleaved so every batch touches many carts.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from recovery.ingest.kafka import Producer

ROLES = ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages")
ROLE_OF = {"cart.updated": "cart", "payment.failed": "payment", "order.completed": "order"}


@dataclass(frozen=True)
class MixEvent:
    """One generated event: its contract topic role, key (the cart id) and JSON bytes."""

    role: str
    key: str
    raw: bytes


def _customer(cart: int) -> dict[str, Any]:
    return {
        "id": f"mix-cust-{cart}",
        "email": f"s{cart}@example.com",
        "phone": f"+336{cart:08d}",
        "first_name": "Claire",
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "consent": {"email": True, "sms": True, "phone": False},
    }


def _cart(cart: int, items: int) -> dict[str, Any]:
    lines = [
        {
            "sku": f"SKU-{n}",
            "name": "Sac en cuir",
            "quantity": 1,
            "unit_price": 49.9,
            "url": "https://shop.example.com/p",
        }
        for n in range(items)
    ]
    return {
        "currency": "EUR",
        "value": round(49.9 * items, 2),
        "restore_url": f"https://shop.example.com/r/{cart}",
        "items": lines,
    }


def _event(kind: str, cart: int, step: int, at: datetime, tag: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"mix-{tag}-{cart}-{step}",
        "type": kind,
        "occurred_at": at.isoformat(),
        "cart_id": f"mix-{tag}-cart-{cart}",
        "customer": _customer(cart),
    }
    if kind == "cart.updated":
        body["cart"] = _cart(cart, step + 1)
    elif kind == "payment.failed":
        body["cart"] = _cart(cart, 4)
        body["payment"] = {"reason": "card_declined", "method": "card"}
    else:
        body["order"] = {"id": f"mix-{tag}-order-{cart}", "value": 199.6, "currency": "EUR"}
    return body


def make_mix(count: int, carts: int) -> list[MixEvent]:
    """``count`` events over ``carts`` carts (count = 5 × carts for the issue's mix), in publishing order."""
    tag = uuid.uuid4().hex[:6]  # fresh ids every run: a rerun on the same database is not all duplicates
    start = datetime.now(UTC) - timedelta(hours=2)
    per_cart = max(1, count // carts)
    events: list[MixEvent] = []
    for step in range(per_cart):
        for cart in range(carts):
            if len(events) >= count:
                break
            last = step == per_cart - 1 and per_cart > 1
            kind = ("payment.failed" if cart % 4 == 0 else "order.completed") if last else "cart.updated"
            at = start + timedelta(seconds=step * 60, microseconds=cart)
            body = _event(kind, cart, step, at, tag)
            events.append(MixEvent(ROLE_OF[kind], body["cart_id"], json.dumps(body).encode()))
    return events


async def publish_mix(bootstrap: str, topics: dict[str, str], events: list[MixEvent]) -> None:
    """Publish every event to its role's topic, keyed by cart id, waiting for the broker."""
    producer = Producer(bootstrap)
    await producer.start()
    try:
        for offset in range(0, len(events), 5000):
            grouped: dict[str, list[tuple[str | None, bytes]]] = {}
            for event in events[offset : offset + 5000]:
                grouped.setdefault(topics[event.role], []).append((event.key, event.raw))
            for topic, messages in grouped.items():
                await producer.send_many(topic, messages)
    finally:
        await producer.stop()
