"""Due steps and their messages: claiming, moving a step or a message to a status, completing a journey.

What firing reads and writes on its hot path (the joined load, ``sending``, ``sent``) is in ``fire_rows``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.journeys.records import JourneyRow
from recovery.ops.metrics import TAKEOVERS
from recovery.states import TERMINAL_STEP_STATUSES, JourneyStatus, MessageState, StepStatus
from recovery.store.schema import journeys, messages, steps, workers
from recovery.store.sql import among, for_update_skip_locked, insert_ignore


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
    found = await _claimable(conn, now=now, worker=worker, limit=limit, lease=lease, dead_after=dead_after)
    ids = [row[0] for row in found]
    if not ids:
        return []
    TAKEOVERS.add(sum(row[1] == StepStatus.CLAIMED for row in found))  # claims of a dead or lapsed worker
    claimed = await conn.execute(
        update(steps)
        .where(among(conn, steps.c.step_id, ids))
        .values(status=StepStatus.CLAIMED.value, claimed_by=worker, claimed_at=now, updated_at=now)
        .returning(*(steps.c[name] for name in _CLAIMED))
    )
    return sorted((ClaimedStep(**row) for row in claimed.mappings()), key=lambda s: s.due_at)


_CLAIMED = ("step_id", "journey_id", "cart_id", "name", "channel", "due_at", "attempts", "claimed_by", "claimed_at")


async def _claimable(
    conn: AsyncConnection, *, now: datetime, worker: str, limit: int, lease: timedelta, dead_after: timedelta | None
) -> list[Any]:
    """(step id, status) of up to ``limit`` steps to claim, locked: takeovers first, then due pending steps."""
    lapsed = [steps.c.claimed_at <= now - lease]
    if dead_after is not None:
        # Never itself: after an outage its own beat is stale too, while its sends are still in flight.
        dead = select(workers.c.worker_id).where(
            workers.c.heartbeat_at <= now - dead_after, workers.c.worker_id != worker
        )
        lapsed.append(steps.c.claimed_by.in_(dead))
    locked = for_update_skip_locked(conn)
    # Two ordered queries, not one OR: with the arms OR-ed, PostgreSQL cannot walk ``ix_steps_due`` in due
    # order and stop at the limit; it read and sorted every due row (100 k due: 78 ms a claim, issue 25).
    # Takeovers first (few: claims in flight), then the due arm, an index walk that stops after ``limit``.
    takeover = (
        select(steps.c.step_id, steps.c.status)
        .where(steps.c.status == StepStatus.CLAIMED, or_(*lapsed))
        .order_by(steps.c.due_at)
        .limit(limit)
        .with_for_update(**locked)
    )
    found = list((await conn.execute(takeover)).all()) if limit > 0 else []
    if len(found) < limit:
        due = (
            select(steps.c.step_id, steps.c.status)
            .where(steps.c.status == StepStatus.PENDING, steps.c.due_at <= now)
            .order_by(steps.c.due_at)
            .limit(limit - len(found))
            .with_for_update(**locked)
        )
        found += (await conn.execute(due)).all()
    return found


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
    row = (await conn.execute(select(*JOURNEY_COLUMNS).where(journeys.c.journey_id == journey_id))).mappings().first()
    return None if row is None else journey_from_row(row)


def journey_from_row(row: RowMapping | dict[str, Any]) -> JourneyRow:
    return JourneyRow(**{**row, "status": JourneyStatus(row["status"]), "context": row["context"] or {}})


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


async def open_message(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Create the message row if it does not exist (an existing one is left as it is)."""
    await insert_ignore(conn, messages, [row])


async def set_message(
    conn: AsyncConnection, message_id: str, state: MessageState, now: datetime, **values: Any
) -> None:
    """Move a message to a new state with extra columns (provider id, error, detail, attempts)."""
    changes: dict[str, Any] = {"state": state.value, "updated_at": now, **values}
    if state == MessageState.SENT:
        changes["sent_at"] = now
    await conn.execute(update(messages).where(messages.c.message_id == message_id).values(**changes))


async def complete_if_done(conn: AsyncConnection, journey_id: str, now: datetime) -> bool:
    """Mark an active journey completed once every step reached a final status (one statement)."""
    result = await conn.execute(_COMPLETE, {"b_journey_id": journey_id, "b_now": now})
    return bool(result.rowcount)


# Built once: SQLAlchemy then only looks up their compiled form.
JOURNEY_COLUMNS = tuple(
    journeys.c[name]
    for name in (
        "journey_id",
        "cart_id",
        "flow",
        "status",
        "holdout",
        "customer_key",
        "store",
        "started_at",
        "messages_sent",
        "clicked",
        "context",
        "flow_version",
    )
)
_TERMINAL = [status.value for status in TERMINAL_STEP_STATUSES]
NOW = bindparam("b_now", type_=journeys.c.ended_at.type)
# Inequalities, not ``not_in``: an expanding IN list is re-rendered into the SQL text on every execution and
# cannot run as an executemany (the batch records N journeys' sends in one).
OPEN_STEPS = (
    select(steps.c.step_id)
    .where(steps.c.journey_id == bindparam("b_journey_id"), *(steps.c.status != status for status in _TERMINAL))
    .exists()
)
_COMPLETE = (
    update(journeys)
    .where(journeys.c.journey_id == bindparam("b_journey_id"), journeys.c.status == JourneyStatus.ACTIVE.value)
    .where(~OPEN_STEPS)
    .values(status=JourneyStatus.COMPLETED.value, ended_at=NOW, end_reason="all_steps_done")
)
