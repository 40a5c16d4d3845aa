"""Journeys and their steps: creating, finding the running ones, ending them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.journeys.apply import ActiveJourney, JourneyEnd, NewJourney
from recovery.journeys.records import guest_cart_id, guest_key
from recovery.rules import Trigger
from recovery.states import JourneyStatus, PublishedType, StepStatus
from recovery.store.database import signal_due
from recovery.store.outbox import enqueue, message_event
from recovery.store.schema import journeys, steps
from recovery.store.sql import among, chunks, insert_rows


async def load_active(conn: AsyncConnection, cart_ids: Iterable[str]) -> list[ActiveJourney]:
    """Running journeys of the given carts."""
    wanted = sorted(set(cart_ids))
    if not wanted:
        return []
    query = select(
        journeys.c.journey_id,
        journeys.c.cart_id,
        journeys.c.flow,
        journeys.c.trigger,
        journeys.c.trigger_event_at,
        journeys.c.messages_sent,
    ).where(among(conn, journeys.c.cart_id, wanted), journeys.c.status == JourneyStatus.ACTIVE)
    return [ActiveJourney(**{**row._asdict(), "trigger": Trigger(row.trigger)}) for row in await conn.execute(query)]


async def carts_with_journeys(conn: AsyncConnection, cart_ids: Iterable[str]) -> set[str]:
    """Which of the given carts ever had a journey (any status): only those can have messages to credit."""
    wanted = sorted(set(cart_ids))
    if not wanted:
        return set()
    query = select(journeys.c.cart_id).where(among(conn, journeys.c.cart_id, wanted)).distinct()
    return set((await conn.execute(query)).scalars())


async def load_last_entries(conn: AsyncConnection, customer_keys: Iterable[str]) -> dict[tuple[str, str], datetime]:
    """When each customer last entered each flow (for ``reentry_after``)."""
    entries: dict[tuple[str, str], datetime] = {}
    for part in chunks(sorted(set(customer_keys))):
        query = (
            select(journeys.c.flow, journeys.c.customer_key, func.max(journeys.c.started_at))
            .where(among(conn, journeys.c.customer_key, part))  # one parameter: compiled once, not per key
            .group_by(journeys.c.flow, journeys.c.customer_key)
        )
        for flow, key, started_at in await conn.execute(query):
            entries[(flow, key)] = started_at
    # ``cart:<id>`` keys also say when that cart last entered each flow (direct calls per failed cart).
    cart_ids = sorted({cart_id for key in customer_keys if (cart_id := guest_cart_id(key)) is not None})
    for part in chunks(cart_ids):
        by_cart = (
            select(journeys.c.flow, journeys.c.cart_id, func.max(journeys.c.started_at))
            .where(among(conn, journeys.c.cart_id, part))
            .group_by(journeys.c.flow, journeys.c.cart_id)
        )
        for flow, cart_id, started_at in await conn.execute(by_cart):
            key = (flow, guest_key(cart_id))
            entries[key] = max(started_at, entries.get(key, started_at))
    return entries


async def create(conn: AsyncConnection, new: list[NewJourney], now: datetime) -> None:
    """Insert journeys and their pending steps; publish ``step.scheduled`` for each step."""
    if not new:
        return
    inserted = await insert_rows(conn, journeys, [_journey_row(j) for j in new], returning="journey_id")
    new = [journey for journey in new if journey.journey_id in inserted]  # an existing journey keeps its steps
    step_rows = []
    events = []
    for journey in new:
        for step in journey.steps:
            step_rows.append(
                {
                    "step_id": f"{journey.journey_id}:{step.name}",
                    "journey_id": journey.journey_id,
                    "cart_id": journey.cart_id,
                    "name": step.name,
                    "position": step.position,
                    "channel": step.channel.value,
                    "due_at": step.due_at,
                    "status": StepStatus.PENDING.value,
                    "attempts": 0,
                    "updated_at": now,
                }
            )
            events.append(
                message_event(
                    type_=PublishedType.STEP_SCHEDULED,
                    now=now,
                    cart_id=journey.cart_id,
                    journey_id=journey.journey_id,
                    flow=journey.flow,
                    step=step.name,
                    channel=step.channel.value,
                )
            )
    await insert_rows(conn, steps, step_rows)
    await enqueue(conn, events)
    await signal_due(conn, [row["due_at"] for row in step_rows], now)  # due now: no wait for the next poll


def _journey_row(j: NewJourney) -> dict[str, Any]:
    """The ``journeys`` row of a journey that starts now."""
    return {
        "journey_id": j.journey_id,
        "cart_id": j.cart_id,
        "flow": j.flow,
        "trigger": j.trigger.value,
        "customer_key": j.customer_key,
        "store": j.store,
        "status": JourneyStatus.ACTIVE.value,
        "holdout": j.holdout,
        "started_at": j.started_at,
        "trigger_event_at": j.trigger_event_at,
        "context": j.context,
        "messages_sent": 0,
        "clicked": False,
        "flow_version": j.flow_version,
    }


_IDENTIFY = (
    update(journeys)
    .where(
        journeys.c.cart_id == bindparam("cart"),
        journeys.c.customer_key == bindparam("guest"),
        journeys.c.status == JourneyStatus.ACTIVE,
    )
    .values(customer_key=bindparam("customer"))
)


async def identify(conn: AsyncConnection, identified: Mapping[str, str]) -> None:
    """Move each cart's active guest journeys (``cart:<id>``) to the customer the cart now belongs to."""
    if identified:
        rows = [{"cart": cart, "guest": guest_key(cart), "customer": key} for cart, key in identified.items()]
        await conn.execute(_IDENTIFY, rows)


async def end(conn: AsyncConnection, ended: list[JourneyEnd], now: datetime) -> None:
    """Close journeys, cancel their pending steps, publish the cancellations and conversions."""
    if not ended:
        return
    closed = []
    for journey in ended:
        result = await conn.execute(
            update(journeys)
            .where(journeys.c.journey_id == journey.journey_id, journeys.c.status == JourneyStatus.ACTIVE)
            .values(status=journey.status.value, ended_at=now, end_reason=journey.reason)
        )
        if result.rowcount:  # a journey that ended meanwhile (e.g. completed) is left as it is
            closed.append(journey)
    ended = closed
    by_id = {journey.journey_id: journey for journey in ended}
    events = []
    for part in chunks(list(by_id)):
        cancelled = await conn.execute(
            update(steps)
            .where(steps.c.journey_id.in_(part), steps.c.status == StepStatus.PENDING)
            .values(status=StepStatus.CANCELLED.value, reason=None, updated_at=now)
            .returning(steps.c.journey_id, steps.c.name, steps.c.channel)
        )
        for journey_id, name, channel in cancelled:
            journey = by_id[journey_id]
            events.append(
                message_event(
                    type_=PublishedType.STEP_CANCELLED,
                    now=now,
                    cart_id=journey.cart_id,
                    journey_id=journey_id,
                    flow=journey.flow,
                    step=name,
                    channel=channel,
                    reason=journey.reason,
                )
            )
    # journey.converted is published by attribution (conversion_rows), once per attributed order.
    await enqueue(conn, events)
