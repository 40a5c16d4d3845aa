"""Generated events for the benches: payment failures with their own phone each, idle carts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from recovery.ingest.kafka import Producer
from recovery.ingest.replay import route
from recovery.settings import TopicsSettings


def phone(index: int) -> str:
    """A distinct French mobile number per index (so per-customer caps never merge two shoppers)."""
    return f"+336{index:08d}"


def payment_failed(index: int, *, sms: bool = True) -> dict[str, Any]:
    """A payment.failed event for shopper ``index`` with SMS consent."""
    return {
        "id": f"bench-pay-{uuid.uuid4().hex}",
        "type": "payment.failed",
        "occurred_at": datetime.now(UTC).isoformat(),
        "cart_id": f"bench-pay-cart-{index}",
        "customer": {
            "id": f"bench-cust-{index}",
            "email": f"s{index}@example.com",
            "phone": phone(index),
            "first_name": "Claire",
            "locale": "fr-FR",
            "timezone": "Europe/Paris",
            "consent": {"email": True, "sms": sms, "phone": False},
        },
        "cart": {
            "currency": "EUR",
            "value": 89.9,
            "restore_url": "https://shop.example.com/cart/restore/1",
            "items": [{"sku": "SAC-01", "name": "Sac en cuir", "quantity": 1, "unit_price": 89.9}],
        },
        "payment": {"reason": "card_declined", "method": "card"},
    }


def cart_updated(index: int) -> dict[str, Any]:
    """A cart.updated event for cart ``index`` (it goes idle and is abandoned later)."""
    event = payment_failed(index, sms=False)
    event.update(id=f"bench-cart-{uuid.uuid4().hex}", type="cart.updated", cart_id=f"bench-idle-cart-{index}")
    del event["payment"]
    return event


async def publish(producer: Producer, topics: TopicsSettings, events: list[dict[str, Any]]) -> None:
    """Publish ``events`` to the topics the service's own router picks, waiting for the broker."""
    grouped: dict[str, list[tuple[str | None, bytes]]] = {}
    for event in events:
        raw = json.dumps(event).encode()
        topic, key = route(raw, topics)
        grouped.setdefault(topic, []).append((key, raw))
    for topic, messages in grouped.items():
        await producer.send_many(topic, messages)
