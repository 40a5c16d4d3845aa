"""Due steps and their messages: claiming, reading what a send needs, and recording each outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.journeys.records import JourneyRow
from recovery.states import TERMINAL_STEP_STATUSES, JourneyStatus, MessageState, StepStatus
from recovery.store.schema import journeys, messages, steps, workers
from recovery.store.sql import for_update_skip_locked, insert_ignore


@dataclass(frozen=True, kw_only=True)
class ClaimedStep:
    """A due step this worker now owns until its lease runs out."""

    step_id: str
    journey_id: str
    cart_id: str
    name: str
    channel: str
    due_at: datetime
    attempts: int
    claimed_by: str
    claimed_at: datetime


@dataclass(frozen=True, kw_only=True)
class MessageRow:
    """The outbox row of one message."""

    message_id: str
    state: MessageState
    attempts: int
    provider_id: str | None
    created_at: datetime
    content: dict[str, Any] | None = None


async def claim_due(
    conn: AsyncConnection,
    *,
    now: datetime,
    worker: str,
    limit: int,
    lease: timedelta,
    dead_after: timedelta | None = None,
) -> list[ClaimedStep]:
    """Claim due pending steps, steps whose claimer's lease ran out, and those of workers whose heartbeat stopped.

    A taken-over step whose message is ``sending`` is reconciled with the provider by the dispatcher before
    anything is sent, so a takeover never sends twice.
    """
    takeover = [and_(steps.c.status == StepStatus.CLAIMED, steps.c.claimed_at <= now - lease)]
    if dead_after is not None:
        # Never itself: after an outage its own beat is stale too, while its sends are still in flight.
        dead = select(workers.c.worker_id).where(
            workers.c.heartbeat_at <= now - dead_after, workers.c.worker_id != worker
        )
        takeover.append(and_(steps.c.status == StepStatus.CLAIMED, steps.c.claimed_by.in_(dead)))
    due = (
        select(steps.c.step_id)
        .where(or_(and_(steps.c.status == StepStatus.PENDING, steps.c.due_at <= now), *takeover))
        .order_by(steps.c.due_at)
        .limit(limit)
        .with_for_update(**for_update_skip_locked(conn))
    )
    ids = [row[0] for row in await conn.execute(due)]
    if not ids:
        return []
    claimed = await conn.execute(
        update(steps)
        .where(steps.c.step_id.in_(ids))
        .values(status=StepStatus.CLAIMED.value, claimed_by=worker, claimed_at=now, updated_at=now)
        .returning(
            steps.c.step_id,
            steps.c.journey_id,
            steps.c.cart_id,
            steps.c.name,
            steps.c.channel,
            steps.c.due_at,
            steps.c.attempts,
            steps.c.claimed_by,
            steps.c.claimed_at,
        )
    )
    return sorted((ClaimedStep(**row) for row in claimed.mappings()), key=lambda s: s.due_at)


async def still_owned(conn: AsyncConnection, step: ClaimedStep) -> bool:
    """True while this worker's claim stands (locks the step row on PostgreSQL until commit).

    A claim whose lease expired may have been taken over by another worker: then only that one sends.
    """
    query = (
        select(steps.c.status, steps.c.claimed_by, steps.c.claimed_at)
        .where(steps.c.step_id == step.step_id)
        .with_for_update()
    )
    row = (await conn.execute(query)).first()
    return (
        row is not None
        and row.status == StepStatus.CLAIMED
        and row.claimed_by == step.claimed_by
        and row.claimed_at == step.claimed_at
    )


async def load_journey(conn: AsyncConnection, journey_id: str) -> JourneyRow | None:
    """The journey of a step."""
    query = select(
        journeys.c.journey_id,
        journeys.c.cart_id,
        journeys.c.flow,
        journeys.c.status,
        journeys.c.holdout,
        journeys.c.customer_key,
        journeys.c.store,
        journeys.c.started_at,
        journeys.c.messages_sent,
        journeys.c.clicked,
        journeys.c.context,
    ).where(journeys.c.journey_id == journey_id)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    return JourneyRow(**{**row, "status": JourneyStatus(row["status"]), "context": row["context"] or {}})


async def recent_sends(conn: AsyncConnection, customer_key: str, since: datetime) -> tuple[datetime, ...]:
    """When this customer was last messaged, across every flow (for the frequency cap)."""
    query = select(messages.c.sent_at).where(
        messages.c.customer_key == customer_key,
        messages.c.sent_at >= since,
        messages.c.state.in_([MessageState.SENT, MessageState.DELIVERED]),
    )
    return tuple(row[0] for row in await conn.execute(query))


async def set_step(
    conn: AsyncConnection,
    step_id: str,
    status: StepStatus,
    now: datetime,
    *,
    reason: str | None = None,
    due_at: datetime | None = None,
    attempts: int | None = None,
) -> None:
    """Move a step to a new status (``pending`` again with a new ``due_at`` for deferrals and retries)."""
    values: dict[str, Any] = {"status": status.value, "reason": reason, "updated_at": now}
    if due_at is not None:
        values["due_at"] = due_at
    if attempts is not None:
        values["attempts"] = attempts
    if status != StepStatus.CLAIMED:
        values |= {"claimed_by": None, "claimed_at": None}
    await conn.execute(update(steps).where(steps.c.step_id == step_id).values(**values))


async def open_message(conn: AsyncConnection, row: dict[str, Any]) -> MessageRow:
    """Create the message row if it does not exist; return the row as it now is."""
    await insert_ignore(conn, messages, [row])
    found = await find_message(conn, row["message_id"])
    assert found is not None  # inserted just above, or already there
    return found


async def find_message(conn: AsyncConnection, message_id: str) -> MessageRow | None:
    """The message row, if an earlier attempt at its step wrote one."""
    query = select(
        messages.c.message_id,
        messages.c.state,
        messages.c.attempts,
        messages.c.provider_id,
        messages.c.created_at,
        messages.c.content,
    ).where(messages.c.message_id == message_id)
    found = (await conn.execute(query)).mappings().first()
    return None if found is None else MessageRow(**{**found, "state": MessageState(found["state"])})


async def set_message(
    conn: AsyncConnection, message_id: str, state: MessageState, now: datetime, **values: Any
) -> None:
    """Move a message to a new state with extra columns (provider id, error, detail, attempts)."""
    changes: dict[str, Any] = {"state": state.value, "updated_at": now, **values}
    if state == MessageState.SENT:
        changes["sent_at"] = now
    await conn.execute(update(messages).where(messages.c.message_id == message_id).values(**changes))


async def count_sent(conn: AsyncConnection, journey_id: str, now: datetime) -> None:
    """One more message sent in this journey."""
    await conn.execute(
        update(journeys).where(journeys.c.journey_id == journey_id).values(messages_sent=journeys.c.messages_sent + 1)
    )


async def complete_if_done(conn: AsyncConnection, journey_id: str, now: datetime) -> bool:
    """Mark an active journey completed once every step reached a final status."""
    open_steps = await conn.scalar(
        select(func.count())
        .select_from(steps)
        .where(steps.c.journey_id == journey_id, steps.c.status.not_in([s.value for s in TERMINAL_STEP_STATUSES]))
    )
    if open_steps:
        return False
    result = await conn.execute(
        update(journeys)
        .where(journeys.c.journey_id == journey_id, journeys.c.status == JourneyStatus.ACTIVE)
        .values(status=JourneyStatus.COMPLETED.value, ended_at=now, end_reason="all_steps_done")
    )
    return bool(result.rowcount)
