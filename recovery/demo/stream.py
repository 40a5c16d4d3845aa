"""A realistic, seeded stream of shop events for the demo: carts, checkout steps, payment failures, orders."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

CATALOGUE = [
    ("SAC-CUIR-01", "Sac en cuir", Decimal("149.90")),
    ("ETUI-02", "Étui à cartes", Decimal("17.50")),
    ("MONTRE-03", "Montre automatique", Decimal("389.00")),
    ("ECHARPE-04", "Écharpe en laine", Decimal("59.00")),
    ("CEINTURE-05", "Ceinture tressée", Decimal("45.00")),
    ("LUNETTES-06", "Lunettes de soleil", Decimal("129.00")),
    ("CARNET-07", "Carnet de notes", Decimal("12.90")),
    ("PORTEFEUILLE-08", "Portefeuille", Decimal("79.00")),
]
STEPS = ["cart", "account", "address", "shipping", "payment", "review"]
REASONS = [
    ("card_declined", 0.35),
    ("insufficient_funds", 0.2),
    ("authentication_failed", 0.3),
    ("expired_card", 0.1),
    ("processing_error", 0.05),
]
MALFORMED = [
    b"{this is not json",
    b'{"id":"bad-type","type":"cart.exploded","occurred_at":"2026-11-20T09:00:00Z","cart_id":"x"}',
    b'{"id":"bad-missing","type":"cart.updated","occurred_at":"2026-11-20T09:00:00Z"}',
    b'{"id":"bad-value","type":"order.completed","occurred_at":"2026-11-20T09:00:00Z","cart_id":"x",'
    b'"order":{"id":"o","value":-5,"currency":"EUR"}}',
]


def generate(carts: int, *, now: datetime, seed: int = 7) -> list[bytes]:
    """Events for ``carts`` shopping sessions over the two hours before ``now``, plus a few bad ones."""
    rng = random.Random(seed)
    events: list[tuple[datetime, bytes]] = []
    for index in range(carts):
        events.extend(_session(rng, index, now))
    events.sort(key=lambda pair: pair[0])
    lines = [line for _, line in events]
    for position, bad in enumerate(MALFORMED):
        lines.insert((position + 1) * len(lines) // (len(MALFORMED) + 1), bad)
    return lines


def _session(rng: random.Random, index: int, now: datetime) -> list[tuple[datetime, bytes]]:
    """One shopper's events: a cart, some checkout steps, maybe a failed payment, maybe an order."""
    french = rng.random() < 0.6
    cart_id = f"demo-cart-{index:05d}"
    customer = _customer(rng, index, french=french)
    store = "fr" if french else "us"
    currency = "EUR" if french else "USD"
    cart, value = _cart(rng, cart_id, currency)
    at = now - timedelta(minutes=rng.uniform(5, 120))
    out: list[tuple[datetime, bytes]] = []
    sequence = 0

    def emit(type_: str, **fields: Any) -> None:
        nonlocal sequence, at
        sequence += 1
        body = {
            "id": f"{cart_id}-e{sequence}",
            "type": type_,
            "occurred_at": at.isoformat(),
            "store": store,
            "cart_id": cart_id,
            **fields,
        }
        out.append((at, json.dumps(body, ensure_ascii=False).encode("utf-8")))
        at += timedelta(seconds=rng.uniform(20, 240))

    emit("cart.updated", customer=customer, cart=cart)
    furthest = rng.choices(range(len(STEPS)), weights=[30, 15, 15, 12, 18, 10])[0]
    for step in STEPS[: furthest + 1]:
        emit("checkout.step", checkout_step=step)
    if STEPS[furthest] in ("payment", "review") and rng.random() < 0.45:
        reason = rng.choices([r for r, _ in REASONS], weights=[w for _, w in REASONS])[0]
        emit("payment.failed", payment={"reason": reason, "method": "card", "amount": float(value)})
    if rng.random() < 0.3:
        emit("order.completed", order={"id": f"ord-{index:05d}", "value": float(value), "currency": currency})
    return out


def _customer(rng: random.Random, index: int, *, french: bool) -> dict[str, Any]:
    """A French or American shopper with a random mix of consents."""
    return {
        "id": f"demo-cust-{index:05d}",
        "email": f"shopper{index}@example.com",
        "phone": f"+336{rng.randrange(10**7, 10**8)}" if french else f"+1212{rng.randrange(10**6, 10**7)}",
        "first_name": rng.choice(["Claire", "Louis", "Inès", "Hugo"] if french else ["Emma", "Noah", "Ava", "Liam"]),
        "locale": "fr-FR" if french else "en-US",
        "timezone": "Europe/Paris" if french else "America/New_York",
        "consent": {"email": rng.random() < 0.85, "sms": rng.random() < 0.55, "phone": rng.random() < 0.4},
    }


def _cart(rng: random.Random, cart_id: str, currency: str) -> tuple[dict[str, Any], Decimal]:
    """One to three catalogue items; the cart snapshot and its value."""
    items: list[dict[str, Any]] = []
    value = Decimal(0)
    for sku, name, price in rng.sample(CATALOGUE, rng.randint(1, 3)):
        quantity = rng.randint(1, 2)
        value += price * quantity
        items.append(
            {
                "sku": sku,
                "name": name,
                "quantity": quantity,
                "unit_price": float(price),
                "url": f"https://shop.example.com/p/{sku.lower()}",
                "image_url": f"https://shop.example.com/img/{sku.lower()}.jpg",
            }
        )
    cart = {
        "currency": currency,
        "value": float(value),
        "items": items,
        "shipping_cost": 4.9,
        "restore_url": f"https://shop.example.com/cart/restore/{cart_id}",
    }
    return cart, value
