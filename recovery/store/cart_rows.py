"""Loading and saving carts, customers and the input dedup table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.journeys.records import CartState, CustomerState
from recovery.store.schema import carts, customers, processed_events
from recovery.store.sql import chunks, for_update_skip_locked, insert_new_keys, upsert

_CART_FIELDS = [f.name for f in fields(CartState)]
_CUSTOMER_FIELDS = [f.name for f in fields(CustomerState)]


async def first_deliveries(conn: AsyncConnection, event_ids: Sequence[str]) -> set[str]:
    """Record event ids as processed; return the ones never seen before."""
    new: set[str] = set()
    for part in chunks(list(dict.fromkeys(event_ids))):
        new |= await insert_new_keys(conn, processed_events, "event_id", part)
    return new


async def load_carts(conn: AsyncConnection, cart_ids: Iterable[str]) -> dict[str, CartState]:
    """Current state of the given carts (missing ones are simply absent)."""
    found: dict[str, CartState] = {}
    for part in chunks(sorted(set(cart_ids))):
        rows = await conn.execute(select(*[carts.c[n] for n in _CART_FIELDS]).where(carts.c.cart_id.in_(part)))
        for row in rows.mappings():
            found[row["cart_id"]] = CartState(**row)
    return found


async def load_customers(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, CustomerState]:
    """Current contact and consent of the given customers."""
    found: dict[str, CustomerState] = {}
    for part in chunks(sorted(set(keys))):
        query = select(*[customers.c[n] for n in _CUSTOMER_FIELDS]).where(customers.c.customer_key.in_(part))
        for row in (await conn.execute(query)).mappings():
            found[row["customer_key"]] = CustomerState(**row)
    return found


async def save_carts(conn: AsyncConnection, states: Iterable[CartState]) -> None:
    """Upsert cart states."""
    rows = []
    for state in states:
        row = _row(state, _CART_FIELDS)
        if isinstance(state.cart, BaseModel):
            row["cart"] = state.cart.model_dump(mode="json", exclude_none=True)
        rows.append(row)
    await upsert(conn, carts, rows, ["cart_id"])


async def save_customers(conn: AsyncConnection, states: Iterable[CustomerState]) -> None:
    """Upsert customer states."""
    await upsert(conn, customers, [_row(state, _CUSTOMER_FIELDS) for state in states], ["customer_key"])


async def claim_idle_carts(conn: AsyncConnection, now: datetime, limit: int) -> list[CartState]:
    """Carts whose idle timer has expired, claimed for this transaction; their timer is cleared."""
    query = (
        select(*[carts.c[n] for n in _CART_FIELDS])
        .where(carts.c.abandon_at <= now, carts.c.ordered_at.is_(None))
        .order_by(carts.c.abandon_at)
        .limit(limit)
        .with_for_update(**for_update_skip_locked(conn))
    )
    due = [CartState(**row) for row in (await conn.execute(query)).mappings()]
    for part in chunks([cart.cart_id for cart in due]):
        await conn.execute(update(carts).where(carts.c.cart_id.in_(part)).values(abandon_at=None, abandoned_at=now))
    return due


def _row(state: object, names: list[str]) -> dict[str, Any]:
    # Not dataclasses.asdict: it deep-copies every cart snapshot, which dominated ingest time.
    return {name: getattr(state, name) for name in names}
