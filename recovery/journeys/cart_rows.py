"""Loading and saving carts, customers and the input dedup table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import attrgetter

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.journeys.records import CART_FIELDS, CUSTOMER_FIELDS, CartState, CustomerState, frozen
from recovery.store.schema import carts, customers, processed_events
from recovery.store.sql import JsonText, chunks, for_update_skip_locked, insert_new_keys, rows_among, upsert_rows

_CART_FIELDS, _CUSTOMER_FIELDS = list(CART_FIELDS), list(CUSTOMER_FIELDS)
_cart_values, _customer_values = attrgetter(*_CART_FIELDS), attrgetter(*_CUSTOMER_FIELDS)  # tuples, in C
_SNAPSHOT = _CART_FIELDS.index("cart")
_DOCUMENTS = frozenset({"cart", "payment"})  # JSON columns that ingest replaces but never clears


async def first_deliveries(conn: AsyncConnection, event_ids: Sequence[str]) -> set[str]:
    """Record event ids as processed; return the ones never seen before (one statement per 2 000 ids)."""
    return await insert_new_keys(conn, processed_events, "event_id", list(dict.fromkeys(event_ids)))


async def load_carts(conn: AsyncConnection, cart_ids: Iterable[str], *, documents: bool = True) -> dict[str, CartState]:
    """Current state of the given carts (missing ones are simply absent).

    ``documents=False`` leaves the JSON columns out (None): the cart snapshot and the last payment
    failure. Ingest only ever replaces them, so they need not be read, decoded and written back
    (``save_carts`` keeps a stored document when given None).
    """
    names = _CART_FIELDS if documents else [n for n in _CART_FIELDS if n not in _DOCUMENTS]
    absent = {} if documents else dict.fromkeys(_DOCUMENTS)  # every field is set: ``frozen`` skips defaults
    wanted = sorted(set(cart_ids))
    if not wanted:
        return {}
    rows = await rows_among(conn, carts, names, "cart_id", wanted)
    return {row[0]: frozen(CartState, {**absent, **dict(zip(names, row, strict=True))}) for row in rows}


async def load_customers(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, CustomerState]:
    """Current contact and consent of the given customers."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await rows_among(conn, customers, _CUSTOMER_FIELDS, "customer_key", wanted)
    return {row[0]: frozen(CustomerState, dict(zip(_CUSTOMER_FIELDS, row, strict=True))) for row in rows}


async def save_carts(conn: AsyncConnection, states: Iterable[CartState]) -> None:
    """Upsert cart states in one statement; a None snapshot or payment keeps the stored one (never cleared)."""
    rows = []
    for state in states:
        row = _cart_values(state)
        if isinstance(state.cart, BaseModel):
            # Straight to JSON text in pydantic's serializer: no dict, no json.dumps.
            snapshot = JsonText(state.cart.model_dump_json(exclude_none=True))
            row = (*row[:_SNAPSHOT], snapshot, *row[_SNAPSHOT + 1 :])
        rows.append(row)
    await upsert_rows(conn, carts, _CART_FIELDS, rows, key=["cart_id"], keep=_DOCUMENTS)


async def save_customers(conn: AsyncConnection, states: Iterable[CustomerState]) -> None:
    """Upsert customer states in one statement."""
    rows = [_customer_values(state) for state in states]
    await upsert_rows(conn, customers, _CUSTOMER_FIELDS, rows, key=["customer_key"])


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
