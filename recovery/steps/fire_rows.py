"""What firing reads and writes: a step's facts in one joined query, its ``sending`` row, its ``sent`` outcome.

Each comes for one step (``Dispatcher.fire``) and for a batch (``steps.dispatch_batch``): the batch forms run
the same statements once for N steps (ids as one array parameter, rows as one executemany), so the cost that
SQLAlchemy and the driver pay per statement is paid per batch. Every statement is built once at import (per
dialect for the array forms): SQLAlchemy then only looks up its compiled form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.journeys.records import CartState, CustomerState, JourneyRow
from recovery.states import JourneyStatus, MessageState, StepStatus
from recovery.steps.step_rows import JOURNEY_COLUMNS, NOW, OPEN_STEPS, ClaimedStep, MessageRow, journey_from_row
from recovery.store.schema import carts, customers, feedback_answers, journeys, messages, steps
from recovery.store.sql import among_param, list_value, upsert

_MESSAGE = tuple(
    messages.c[name] for name in ("message_id", "state", "attempts", "provider_id", "created_at", "content")
)
_CART = tuple(f.name for f in fields(CartState))
_CUSTOMER = tuple(f.name for f in fields(CustomerState))
_RECENT = messages.alias("recent")
_SINCE = bindparam("b_since", type_=messages.c.sent_at.type)


def _fire_select(*, with_message: bool) -> Select[Any]:
    """Ownership, journey, cart, customer (and the step's message) in one round trip; the step row stays locked
    (PostgreSQL) until the transaction ends, so a worker taking the step over waits for this one's write."""
    joined = (
        steps.outerjoin(journeys, journeys.c.journey_id == steps.c.journey_id)
        .outerjoin(carts, carts.c.cart_id == steps.c.cart_id)
        .outerjoin(customers, customers.c.customer_key == journeys.c.customer_key)
        .outerjoin(feedback_answers, feedback_answers.c.journey_id == journeys.c.journey_id)
    )
    if with_message:
        joined = joined.outerjoin(
            messages, messages.c.message_id == bindparam("b_message_id", type_=messages.c.message_id.type)
        )
    # The customer's sends in the frequency window, one row each (the other columns repeat).
    joined = joined.outerjoin(
        _RECENT,
        and_(
            _RECENT.c.customer_key == journeys.c.customer_key,
            _RECENT.c.sent_at >= _SINCE,
            # Two equalities, not ``in_``: an IN list is re-expanded into the SQL text on every execution
            # (issue 25: ~14 % of a dispatching process's CPU went to that for this hot query).
            or_(_RECENT.c.state == MessageState.SENT.value, _RECENT.c.state == MessageState.DELIVERED.value),
        ),
    )
    return select(
        steps.c.step_id.label("step_id"),
        steps.c.status.label("step_status"),
        steps.c.claimed_by.label("step_claimed_by"),
        steps.c.claimed_at.label("step_claimed_at"),
        *[column.label(f"j_{column.name}") for column in JOURNEY_COLUMNS],
        *[carts.c[name].label(f"c_{name}") for name in _CART],
        *[customers.c[name].label(f"u_{name}") for name in _CUSTOMER],
        *([column.label(f"m_{column.name}") for column in _MESSAGE] if with_message else []),
        feedback_answers.c.answer.label("f_answer"),
        _RECENT.c.sent_at.label("recent_sent_at"),
    ).select_from(joined)


_FIRE_ROWS = (
    _fire_select(with_message=True)
    .where(steps.c.step_id == bindparam("b_step_id", type_=steps.c.step_id.type))
    .with_for_update(of=steps)
)


@cache
def _batch_statements(dialect: str) -> tuple[Select[Any], Select[Any]]:
    """The batch's joined load (every step, locked) and its message read, for ``dialect``."""
    rows = _fire_select(with_message=False).where(among_param(dialect, steps.c.step_id, "b_step_ids"))
    found = select(*_MESSAGE).where(among_param(dialect, messages.c.message_id, "b_message_ids"))
    return rows.with_for_update(of=steps), found


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
    if not rows:
        return None
    message = None
    if rows[0]["m_message_id"] is not None:
        message = _message({column.name: rows[0][f"m_{column.name}"] for column in _MESSAGE})
    return _fire_rows(step, rows, message)


async def load_many_for_fire(
    conn: AsyncConnection, claimed: Sequence[tuple[ClaimedStep, str]], *, since: datetime
) -> dict[str, FireRows | None]:
    """Per step id, what ``load_for_fire`` says for it, in two queries for the whole batch (rows, messages).

    ``claimed``: each step with its message id.
    """
    load, read_messages = _batch_statements(conn.dialect.name)
    params = {"b_step_ids": list_value(conn.dialect.name, [step.step_id for step, _ in claimed]), "b_since": since}
    by_step: dict[str, list[RowMapping]] = {}
    for row in (await conn.execute(load, params)).mappings():
        by_step.setdefault(row["step_id"], []).append(row)
    ids = [message_id for step, message_id in claimed if step.step_id in by_step]
    found = await conn.execute(read_messages, {"b_message_ids": list_value(conn.dialect.name, ids)}) if ids else None
    messages_by_id = {row["message_id"]: _message(row) for row in (found.mappings() if found else ())}
    return {
        step.step_id: _fire_rows(step, by_step[step.step_id], messages_by_id.get(message_id))
        if step.step_id in by_step
        else None
        for step, message_id in claimed
    }


def _message(found: RowMapping | dict[str, Any]) -> MessageRow:
    return MessageRow(**{**found, "state": MessageState(found["state"])})


def _fire_rows(step: ClaimedStep, rows: Sequence[RowMapping], message: MessageRow | None) -> FireRows | None:
    """The step's facts from its joined rows (one per recent send); None when the claim no longer stands."""
    row = rows[0]
    if (row["step_status"], row["step_claimed_by"], row["step_claimed_at"]) != (
        StepStatus.CLAIMED,
        step.claimed_by,
        step.claimed_at,
    ):
        return None
    if row["j_journey_id"] is None:
        return FireRows(journey=None, cart=None, customer=None, message=None)
    journey = journey_from_row(
        {column.name: row[f"j_{column.name}"] for column in JOURNEY_COLUMNS} | {"feedback": row["f_answer"]}
    )
    cart = None if row["c_cart_id"] is None else CartState(**{name: row[f"c_{name}"] for name in _CART})
    customer = (
        None if row["u_customer_key"] is None else CustomerState(**{name: row[f"u_{name}"] for name in _CUSTOMER})
    )
    recent = tuple(r["recent_sent_at"] for r in rows if r["recent_sent_at"] is not None)
    return FireRows(journey=journey, cart=cart, customer=customer, message=message, recent_sends=recent)


_SENDING_SET = ("state", "updated_at", "attempts", "channel", "template_version", "content")


async def open_sending(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Write the message row as ``sending`` with its content, creating it or updating an earlier one."""
    await upsert(conn, messages, "message_id", _SENDING_SET, row)


async def open_sending_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """``open_sending`` for every row (same keys each), in one executemany."""
    if rows:
        await upsert(conn, messages, "message_id", _SENDING_SET, rows)  # type: ignore[arg-type]  # executemany


# One more message sent, and the journey completed when that was its last open step.
_DONE = and_(journeys.c.status == JourneyStatus.ACTIVE.value, ~OPEN_STEPS)
_COUNT_SENT = (
    update(journeys)
    .where(journeys.c.journey_id == bindparam("b_journey_id"))
    .values(
        messages_sent=journeys.c.messages_sent + 1,
        status=case((_DONE, JourneyStatus.COMPLETED.value), else_=journeys.c.status),
        ended_at=case((_DONE, NOW), else_=journeys.c.ended_at),
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


@dataclass(frozen=True, kw_only=True)
class SentRow:
    """One send the provider took, as ``record_sent`` writes it."""

    step_id: str
    message_id: str
    journey_id: str
    provider_id: str | None
    detail: dict[str, Any] | None


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
    sent = SentRow(
        step_id=step_id, message_id=message_id, journey_id=journey_id, provider_id=provider_id, detail=detail
    )
    await record_sent_many(conn, [sent], now)


async def record_sent_many(conn: AsyncConnection, sent: Sequence[SentRow], now: datetime) -> None:
    """``record_sent`` for every send, three statements for all of them (each an executemany).

    The steps are written before their journeys are counted: a journey completes once its last step is.
    """
    if not sent:
        return
    one = len(sent) == 1
    messages_sent = [
        {"b_message_id": s.message_id, "b_now": now, "b_provider_id": s.provider_id, "b_detail": s.detail} for s in sent
    ]
    steps_sent = [{"b_step_id": s.step_id, "b_now": now} for s in sent]
    journeys_counted = [{"b_journey_id": s.journey_id, "b_now": now} for s in sent]
    for statement, params in (
        (_MESSAGE_SENT, messages_sent),
        (_STEP_SENT, steps_sent),
        (_COUNT_SENT, journeys_counted),
    ):
        await conn.execute(statement, params[0] if one else params)
