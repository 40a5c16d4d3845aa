"""Due steps and their messages: claiming, reading what a send needs, and recording each outcome."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.journeys.records import CartState, CustomerState, JourneyRow
from recovery.ops.metrics import TAKEOVERS
from recovery.states import TERMINAL_STEP_STATUSES, JourneyStatus, MessageState, StepStatus
from recovery.store.schema import carts, customers, feedback_answers, journeys, messages, steps, workers
from recovery.store.sql import among, for_update_skip_locked, insert_ignore, upsert


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
    row = (await conn.execute(select(*_JOURNEY).where(journeys.c.journey_id == journey_id))).mappings().first()
    return None if row is None else _journey(row)


def _journey(row: RowMapping | dict[str, Any]) -> JourneyRow:
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


# The firing path's statements, built once: SQLAlchemy then only looks up their compiled form.
_JOURNEY = tuple(
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
_MESSAGE = tuple(
    messages.c[name] for name in ("message_id", "state", "attempts", "provider_id", "created_at", "content")
)
_CART = tuple(f.name for f in fields(CartState))
_CUSTOMER = tuple(f.name for f in fields(CustomerState))
_TERMINAL = [status.value for status in TERMINAL_STEP_STATUSES]
_NOW = bindparam("b_now", type_=journeys.c.ended_at.type)
_RECENT = messages.alias("recent")

# Ownership, journey, cart, customer and the step's message in one round trip; the step row stays locked
# (PostgreSQL) until the transaction ends, so a worker taking the step over waits for this one's write.
_FIRE_ROWS = (
    select(
        steps.c.status.label("step_status"),
        steps.c.claimed_by.label("step_claimed_by"),
        steps.c.claimed_at.label("step_claimed_at"),
        *[column.label(f"j_{column.name}") for column in _JOURNEY],
        *[carts.c[name].label(f"c_{name}") for name in _CART],
        *[customers.c[name].label(f"u_{name}") for name in _CUSTOMER],
        *[column.label(f"m_{column.name}") for column in _MESSAGE],
        feedback_answers.c.answer.label("f_answer"),
        _RECENT.c.sent_at.label("recent_sent_at"),
    )
    .select_from(
        steps.outerjoin(journeys, journeys.c.journey_id == steps.c.journey_id)
        .outerjoin(carts, carts.c.cart_id == steps.c.cart_id)
        .outerjoin(customers, customers.c.customer_key == journeys.c.customer_key)
        .outerjoin(feedback_answers, feedback_answers.c.journey_id == journeys.c.journey_id)
        .outerjoin(messages, messages.c.message_id == bindparam("b_message_id", type_=messages.c.message_id.type))
        # The customer's sends in the frequency window, one row each (the other columns repeat).
        .outerjoin(
            _RECENT,
            and_(
                _RECENT.c.customer_key == journeys.c.customer_key,
                _RECENT.c.sent_at >= bindparam("b_since", type_=messages.c.sent_at.type),
                # Two equalities, not ``in_``: an IN list is re-expanded into the SQL text on every execution
                # (issue 25: ~14 % of a dispatching process's CPU went to that for this hot query).
                or_(_RECENT.c.state == MessageState.SENT.value, _RECENT.c.state == MessageState.DELIVERED.value),
            ),
        )
    )
    .where(steps.c.step_id == bindparam("b_step_id", type_=steps.c.step_id.type))
    .with_for_update(of=steps)
)

_OPEN_STEPS = (
    select(steps.c.step_id)
    .where(steps.c.journey_id == bindparam("b_journey_id"), steps.c.status.not_in(_TERMINAL))
    .exists()
)
_COMPLETE = (
    update(journeys)
    .where(journeys.c.journey_id == bindparam("b_journey_id"), journeys.c.status == JourneyStatus.ACTIVE.value)
    .where(~_OPEN_STEPS)
    .values(status=JourneyStatus.COMPLETED.value, ended_at=_NOW, end_reason="all_steps_done")
)
# One more message sent, and the journey completed when that was its last open step.
_DONE = and_(journeys.c.status == JourneyStatus.ACTIVE.value, ~_OPEN_STEPS)
_COUNT_SENT = (
    update(journeys)
    .where(journeys.c.journey_id == bindparam("b_journey_id"))
    .values(
        messages_sent=journeys.c.messages_sent + 1,
        status=case((_DONE, JourneyStatus.COMPLETED.value), else_=journeys.c.status),
        ended_at=case((_DONE, _NOW), else_=journeys.c.ended_at),
        end_reason=case((_DONE, "all_steps_done"), else_=journeys.c.end_reason),
    )
)
_MESSAGE_SENT = (
    update(messages)
    .where(messages.c.message_id == bindparam("b_message_id"))
    .values(
        state=MessageState.SENT.value,
        updated_at=bindparam("b_now"),
        sent_at=bindparam("b_now"),
        provider_id=bindparam("b_provider_id"),
        detail=bindparam("b_detail"),
    )
)
_STEP_SENT = (
    update(steps)
    .where(steps.c.step_id == bindparam("b_step_id"))
    .values(status=StepStatus.SENT.value, reason=None, updated_at=bindparam("b_now"), claimed_by=None, claimed_at=None)
)
_SENDING_SET = ("state", "updated_at", "attempts", "channel", "template_version", "content")


@dataclass(frozen=True, kw_only=True)
class FireRows:
    """What firing a still-owned step reads: its journey, cart, customer and message row (each maybe gone)."""

    journey: JourneyRow | None
    cart: CartState | None
    customer: CustomerState | None
    message: MessageRow | None
    recent_sends: tuple[datetime, ...] = ()  # the customer's sends since ``since`` (frequency cap)


async def load_for_fire(
    conn: AsyncConnection, step: ClaimedStep, message_id: str, *, since: datetime
) -> FireRows | None:
    """The step's rows in one query, locking the step; None when this worker's claim no longer stands.

    A claim whose lease expired may have been taken over by another worker: then only that one sends.
    """
    params = {"b_step_id": step.step_id, "b_message_id": message_id, "b_since": since}
    rows = (await conn.execute(_FIRE_ROWS, params)).mappings().all()
    row = rows[0] if rows else None
    if row is None or (row["step_status"], row["step_claimed_by"], row["step_claimed_at"]) != (
        StepStatus.CLAIMED,
        step.claimed_by,
        step.claimed_at,
    ):
        return None
    if row["j_journey_id"] is None:
        return FireRows(journey=None, cart=None, customer=None, message=None)
    journey = _journey({column.name: row[f"j_{column.name}"] for column in _JOURNEY} | {"feedback": row["f_answer"]})
    cart = None if row["c_cart_id"] is None else CartState(**{name: row[f"c_{name}"] for name in _CART})
    customer = (
        None if row["u_customer_key"] is None else CustomerState(**{name: row[f"u_{name}"] for name in _CUSTOMER})
    )
    message = None
    if row["m_message_id"] is not None:
        found = {column.name: row[f"m_{column.name}"] for column in _MESSAGE}
        message = MessageRow(**{**found, "state": MessageState(found["state"])})
    recent = tuple(r["recent_sent_at"] for r in rows if r["recent_sent_at"] is not None)
    return FireRows(journey=journey, cart=cart, customer=customer, message=message, recent_sends=recent)


async def open_sending(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Write the message row as ``sending`` with its content, creating it or updating an earlier one."""
    await upsert(conn, messages, "message_id", _SENDING_SET, row)


async def record_sent(
    conn: AsyncConnection,
    *,
    step_id: str,
    message_id: str,
    journey_id: str,
    now: datetime,
    provider_id: str | None,
    detail: dict[str, Any] | None,
) -> None:
    """The provider took the message: message ``sent``, step ``sent``, journey counted (and completed when it
    was its last open step), in three statements."""
    await conn.execute(
        _MESSAGE_SENT, {"b_message_id": message_id, "b_now": now, "b_provider_id": provider_id, "b_detail": detail}
    )
    await conn.execute(_STEP_SENT, {"b_step_id": step_id, "b_now": now})
    await conn.execute(_COUNT_SENT, {"b_journey_id": journey_id, "b_now": now})
