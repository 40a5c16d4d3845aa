"""Deleting personal data: erase one shopper (GDPR request) or purge carts past the retention period.

Every table holding data about a shopper is listed once in ``FORGET``; a new table is one more line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum

from sqlalchemy import ColumnElement, Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.store.schema import callback_tasks, carts, customers, journeys, metadata


class By(Enum):
    """Which identifiers a table's rows are found by."""

    CUSTOMER = "customer_keys"
    CART = "cart_ids"
    JOURNEY = "journey_ids"
    PHONE_HASH = "phone_hashes"
    TASK = "task_ids"


# (table, column, identifier set). Children first, so a foreign key added later never blocks a delete.
FORGET: tuple[tuple[str, str, By], ...] = (
    ("clicks", "cart_id", By.CART),
    ("short_links", "journey_id", By.JOURNEY),
    ("conversions", "cart_id", By.CART),
    ("discount_codes", "journey_id", By.JOURNEY),
    ("feedback_answers", "journey_id", By.JOURNEY),
    ("callback_events", "task_id", By.TASK),
    ("steps", "journey_id", By.JOURNEY),
    ("steps", "cart_id", By.CART),
    ("messages", "customer_key", By.CUSTOMER),
    ("messages", "cart_id", By.CART),
    ("callback_tasks", "customer_key", By.CUSTOMER),
    ("callback_tasks", "cart_id", By.CART),
    ("callback_requests", "customer_key", By.CUSTOMER),
    ("callback_requests", "phone_hash", By.PHONE_HASH),
    ("consent_ledger", "customer_key", By.CUSTOMER),
    ("journeys", "customer_key", By.CUSTOMER),
    ("journeys", "cart_id", By.CART),
    ("carts", "customer_key", By.CUSTOMER),
    ("carts", "cart_id", By.CART),
    ("customers", "customer_key", By.CUSTOMER),
)
# Tables with nothing about a person: input dedup ids; outbox rows live seconds before the relay sends them.
# Template versions are the marketers' work (their author is staff, not a shopper); workers are heartbeats;
# channel_pacing holds one send-slot time per channel.
NO_PERSONAL_DATA: frozenset[str] = frozenset(
    {
        "processed_events",
        "outbox_events",
        "template_versions",
        "flow_versions",
        "workers",
        "channel_pacing",
        "webhook_deliveries",
        "sessions",
        "inbound_sms",
    }
)
# Rows that only say "already handled" (a platform's webhook delivery, a Twilio inbound SMS) or a session
# long expired: they hold nothing about a shopper, but without a purge they grow with every delivery.
# (table, time column); ``processed_events`` is not here: it has no time column to purge by.
BOOKKEEPING: tuple[tuple[str, str], ...] = (
    ("webhook_deliveries", "received_at"),
    ("inbound_sms", "received_at"),
    ("sessions", "expires_at"),
)
# Platforms redeliver a webhook for up to 3 days (Stripe; Shopify 48 h): a delivery id is kept at least this
# long whatever the retention period, so a late redelivery is still recognised and not published twice.
REDELIVERY_WINDOW = timedelta(days=7)
_CHUNK = 500  # identifiers per IN (...) list: well under every driver's bound-parameter limit


@dataclass
class Targets:
    """The identifiers whose rows are deleted."""

    customer_keys: set[str] = field(default_factory=set)
    cart_ids: set[str] = field(default_factory=set)
    journey_ids: set[str] = field(default_factory=set)
    phone_hashes: set[str] = field(default_factory=set)
    task_ids: set[str] = field(default_factory=set)

    def empty(self) -> bool:
        return not (self.customer_keys or self.cart_ids or self.journey_ids or self.phone_hashes or self.task_ids)


async def erase_shopper(
    engine: AsyncEngine,
    *,
    email: str | None = None,
    phone: str | None = None,
    phone_hashes: Iterable[str] = (),
) -> dict[str, int]:
    """Delete every row about the shopper with this email or phone; returns rows deleted per table.

    ``phone_hashes`` are the phone's keyed hashes (one per link secret, current and previous) that key
    SMS callback requests, so requests from a number no customer row matches are erased too.
    """
    async with engine.begin() as conn:
        targets = Targets()
        if email:
            found = select(customers.c.customer_key).where(func.lower(customers.c.email) == email.strip().lower())
            targets.customer_keys |= set((await conn.scalars(found)).all())
        if phone:
            found = select(customers.c.customer_key).where(customers.c.phone == phone.strip())
            targets.customer_keys |= set((await conn.scalars(found)).all())
        targets.phone_hashes |= set(phone_hashes)
        await _add_carts_and_journeys(conn, targets, carts.c.customer_key.in_(targets.customer_keys))
        return await _delete(conn, targets)


async def purge_before(engine: AsyncEngine, cutoff: datetime, *, now: datetime | None = None) -> dict[str, int]:
    """Delete carts whose last event is older than ``cutoff``, with their journeys and messages, and the
    customers that no remaining cart refers to and that were last updated before ``cutoff``; then the
    bookkeeping rows (``BOOKKEEPING``) older than both ``cutoff`` and the redelivery window."""
    async with engine.begin() as conn:
        targets = Targets()
        await _add_carts_and_journeys(conn, targets, carts.c.last_event_at < cutoff)
        still_shopping = select(carts.c.customer_key).where(carts.c.last_event_at >= cutoff)
        stale = select(customers.c.customer_key).where(
            customers.c.updated_at < cutoff, customers.c.customer_key.not_in(still_shopping)
        )
        targets.customer_keys |= set((await conn.scalars(stale)).all())
        counts = await _delete(conn, targets)
        window_start = (now or datetime.now(UTC)) - REDELIVERY_WINDOW
        for name, column in BOOKKEEPING:
            table = metadata.tables[name]
            result = await conn.execute(delete(table).where(table.c[column] < min(cutoff, window_start)))
            if result.rowcount:
                counts[name] = result.rowcount
        return counts


async def _add_carts_and_journeys(conn: AsyncConnection, targets: Targets, carts_where: ColumnElement[bool]) -> None:
    """Add the carts matching ``carts_where`` and every journey of those carts or customers."""
    targets.cart_ids |= set((await conn.scalars(select(carts.c.cart_id).where(carts_where))).all())
    for column, values in ((journeys.c.cart_id, targets.cart_ids), (journeys.c.customer_key, targets.customer_keys)):
        for chunk in _chunks(values):
            rows = await conn.execute(select(journeys.c.journey_id, journeys.c.cart_id).where(column.in_(chunk)))
            for journey_id, cart_id in rows:
                targets.journey_ids.add(journey_id)
                targets.cart_ids.add(cart_id)
    # Callback tasks' audit rows (agents' notes) go with their tasks.
    for column, values in (
        (callback_tasks.c.cart_id, targets.cart_ids),
        (callback_tasks.c.customer_key, targets.customer_keys),
    ):
        for chunk in _chunks(values):
            targets.task_ids |= set(
                (await conn.scalars(select(callback_tasks.c.task_id).where(column.in_(chunk)))).all()
            )


async def _delete(conn: AsyncConnection, targets: Targets) -> dict[str, int]:
    """Run every statement of ``FORGET``; the counts say what was removed (nothing if no target)."""
    counts: dict[str, int] = {}
    if targets.empty():
        return counts
    for name, column, by in FORGET:
        table: Table = metadata.tables[name]
        for chunk in _chunks(getattr(targets, by.value)):
            result = await conn.execute(delete(table).where(table.c[column].in_(chunk)))
            counts[name] = counts.get(name, 0) + (result.rowcount or 0)
    return {name: count for name, count in counts.items() if count}


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]
