"""Shoppers' "why did you leave?" answers: the latest per journey counts, each change is published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.attribution.feedback import FeedbackAnswer
from recovery.states import PublishedType
from recovery.store.outbox import enqueue, message_event
from recovery.store.schema import carts, feedback_answers, journeys


@dataclass(frozen=True, kw_only=True)
class Answered:
    """Where the shopper goes next, and whether this visit changed the recorded answer."""

    cart_id: str
    restore_url: str | None
    changed: bool


async def record_answer(
    conn: AsyncConnection, journey_id: str, answer: FeedbackAnswer, now: datetime
) -> Answered | None:
    """Record ``answer`` for the journey (``None`` if unknown); publish ``feedback.received`` when it changes."""
    journey = (
        await conn.execute(
            select(journeys.c.cart_id, journeys.c.store, journeys.c.flow, carts.c.cart)
            .select_from(journeys.outerjoin(carts, carts.c.cart_id == journeys.c.cart_id))
            .where(journeys.c.journey_id == journey_id)
        )
    ).first()
    if journey is None:
        return None
    found = journey.cart.get("restore_url") if isinstance(journey.cart, dict) else None
    restore = found if isinstance(found, str) else None
    previous = await conn.scalar(select(feedback_answers.c.answer).where(feedback_answers.c.journey_id == journey_id))
    if previous == answer.value:
        return Answered(cart_id=journey.cart_id, restore_url=restore, changed=False)
    values = {"answer": answer.value, "answered_at": now}
    if previous is None:
        await conn.execute(
            insert(feedback_answers).values(
                journey_id=journey_id, cart_id=journey.cart_id, store=journey.store, **values
            )
        )
    else:
        await conn.execute(update(feedback_answers).where(feedback_answers.c.journey_id == journey_id).values(**values))
    event = message_event(
        type_=PublishedType.FEEDBACK_RECEIVED,
        now=now,
        cart_id=journey.cart_id,
        journey_id=journey_id,
        flow=journey.flow,
        answer=answer.value,
    )
    await enqueue(conn, [event])
    return Answered(cart_id=journey.cart_id, restore_url=restore, changed=True)


async def answers_by_store(
    conn: AsyncConnection, *, since: datetime | None, until: datetime | None = None
) -> dict[str, dict[str, int]]:
    """``{store: {answer: journeys}}`` for answers given in the period."""
    query = select(feedback_answers.c.store, feedback_answers.c.answer, func.count()).group_by(
        feedback_answers.c.store, feedback_answers.c.answer
    )
    if since is not None:
        query = query.where(feedback_answers.c.answered_at >= since)
    if until is not None:
        query = query.where(feedback_answers.c.answered_at < until)
    found: dict[str, dict[str, int]] = {}
    for store, answer, count in await conn.execute(query):
        found.setdefault(store, {})[answer] = int(count)
    return found
