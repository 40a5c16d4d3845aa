"""What the callback-offer page ``/c/{token}`` reads and writes: shopper, order, slots with room, booking."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.desk import claim_rows, task_rows
from recovery.desk.capacity import slots_with_room
from recovery.desk.hours import slots
from recovery.desk.policy import DeskPolicy
from recovery.states import JourneyStatus
from recovery.store.schema import callback_tasks, carts, customers, journeys, messages


async def shopper_of(engine: AsyncEngine, message_id: str) -> tuple[str | None, str | None, str | None] | None:
    """(timezone, locale, store) of the offer's shopper; ``None`` when the message is unknown."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(customers.c.timezone, customers.c.locale, carts.c.store)
                .select_from(
                    messages.outerjoin(customers, customers.c.customer_key == messages.c.customer_key).outerjoin(
                        carts, carts.c.cart_id == messages.c.cart_id
                    )
                )
                .where(messages.c.message_id == message_id)
            )
        ).first()
    return None if row is None else (row.timezone, row.locale, row.store)


async def already_ordered(engine: AsyncEngine, message_id: str) -> bool:
    """True when the offer's cart has been ordered since (order recorded or journey converted)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(carts.c.ordered_at, journeys.c.status)
                .select_from(
                    messages.outerjoin(carts, carts.c.cart_id == messages.c.cart_id).outerjoin(
                        journeys, journeys.c.journey_id == messages.c.journey_id
                    )
                )
                .where(messages.c.message_id == message_id)
            )
        ).first()
    return row is not None and (row.ordered_at is not None or row.status == JourneyStatus.CONVERTED.value)


async def open_slots(engine: AsyncEngine, now: datetime, zone: Any, policy: DeskPolicy, days: int) -> list[datetime]:
    """The slots inside the calling hours whose clock hour still has room for a call (``callbacks.per_hour``)."""
    offered = slots(now, zone, policy.hours, days=days)
    if policy.per_hour is None or not offered:
        return offered
    async with engine.connect() as conn:
        counts = await task_rows.due_counts(conn, offered[0], offered[-1] + timedelta(hours=1))
    return slots_with_room(offered, counts, policy.per_hour)


async def book_offer(
    engine: AsyncEngine,
    message_id: str,
    now: datetime,
    due: datetime | None,
    *,
    timezone: str | None,
    policy: DeskPolicy,
) -> datetime | None:
    """Book (or move) the offer's callback task at ``due`` (``None``: the next open moment with room).

    The moment booked, or ``None`` when the offer has no task to book (the message is not an offer).
    """
    async with engine.begin() as conn:
        if due is None:  # as soon as possible: the next open moment with room
            due = await task_rows.plan_due_at(conn, now, timezone, policy)
        task_id = await task_rows.task_for_offer(conn, message_id, now, due_at=due, policy=policy)
        if task_id is None:
            return None
        current = await conn.scalar(select(callback_tasks.c.due_at).where(callback_tasks.c.task_id == task_id))
        if current != due:  # the shopper picked again: move the open task
            await claim_rows.reschedule(conn, task_id, due, now, policy.view)
    return due
