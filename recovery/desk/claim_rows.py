"""The agents' desk in the store: claim, release and complete callback tasks, each one atomic and audited.

A claim is one conditional ``UPDATE … WHERE status = 'open' OR claimed_until < now … RETURNING``, so two
agents claiming at once get exactly one winner on SQLite and PostgreSQL alike, with no read-then-write.
A claim past ``claimed_until`` is free again: the scheduler's sweep (and the queue's listing) return it to
the queue at once, audited ``expired``; a claim racing the sweep still takes it over.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.consent.authority import AddressKeys
from recovery.consent.ledger import ConsentChannel, ConsentSource, record_consent
from recovery.desk.policy import DEFAULT_POLICY, DeskPolicy
from recovery.desk.queue import Completion, Outcome, TaskEvent, TaskStatus, retries_left
from recovery.desk.task_rows import plan_due_at, publish_task
from recovery.desk.task_view import DEFAULT_VIEW, TaskViewSettings
from recovery.states import PublishedType
from recovery.store.outbox import enqueue
from recovery.store.schema import callback_events, callback_tasks, customers


class TaskNotFound(LookupError):
    """No task has this id."""


@dataclass(frozen=True, kw_only=True)
class Refused:
    """The change was not made: ``holder`` holds the task (or ``None`` when it is done / not claimed)."""

    detail: str
    holder: str | None = None


_C = callback_tasks.c


def _free_or_mine(agent: str, now: datetime) -> ColumnElement[bool]:
    """Open, or claimed by someone whose claim has run out, or already the caller's own (a renewal)."""
    return or_(
        _C.status == TaskStatus.OPEN.value,
        and_(_C.status == TaskStatus.CLAIMED.value, or_(_C.claimed_until < now, _C.claimed_by == agent)),
    )


async def _audit(
    conn: AsyncConnection,
    task_id: str,
    kind: TaskEvent,
    now: datetime,
    *,
    agent: str | None = None,
    outcome: str | None = None,
    note: str | None = None,
) -> None:
    row = {"task_id": task_id, "kind": kind.value, "agent": agent, "outcome": outcome, "note": note, "at": now}
    await conn.execute(callback_events.insert().values(**row))


async def _refusal(conn: AsyncConnection, task_id: str, agent: str, now: datetime) -> Refused:
    """Why a conditional update matched nothing; ``TaskNotFound`` when the id is unknown."""
    row = (await conn.execute(select(_C.status, _C.claimed_by, _C.claimed_until).where(_C.task_id == task_id))).first()
    if row is None:
        raise TaskNotFound(task_id)
    if row.status == TaskStatus.DONE.value:
        return Refused(detail="this task is already done")
    held = row.status == TaskStatus.CLAIMED.value and row.claimed_until is not None and row.claimed_until >= now
    if held and row.claimed_by != agent:
        return Refused(detail=f"{row.claimed_by} holds this task", holder=row.claimed_by)
    return Refused(detail="you do not hold this task: claim it first")


async def claim(
    conn: AsyncConnection,
    task_id: str,
    agent: str,
    now: datetime,
    claim_for: timedelta,
    view: TaskViewSettings = DEFAULT_VIEW,
) -> Refused | None:
    """Claim the task for ``agent`` until ``now + claim_for``; ``Refused`` naming the holder otherwise."""
    # The UPDATE comes first: on SQLite a transaction that read before writing cannot wait for the lock.
    result = await conn.execute(
        update(callback_tasks)
        .where(_C.task_id == task_id, _free_or_mine(agent, now))
        .values(status=TaskStatus.CLAIMED.value, claimed_by=agent, claimed_until=now + claim_for, updated_at=now)
        .returning(_C.task_id)
    )
    if result.first() is None:
        return await _refusal(conn, task_id, agent, now)
    last = (
        await conn.execute(
            select(callback_events.c.kind, callback_events.c.agent)
            .where(callback_events.c.task_id == task_id)
            .order_by(callback_events.c.id.desc())
            .limit(1)
        )
    ).first()
    if last is not None and last.kind == TaskEvent.CLAIMED.value and last.agent != agent:
        # Only a lapsed claim can be taken over: the audit says whose claim ran out.
        await _audit(conn, task_id, TaskEvent.EXPIRED, now, agent=last.agent)
    await _audit(conn, task_id, TaskEvent.CLAIMED, now, agent=agent)
    await publish_task(conn, task_id, now, view)
    return None


async def expire_claims(conn: AsyncConnection, now: datetime, view: TaskViewSettings = DEFAULT_VIEW) -> int:
    """Return every claim past ``claimed_until`` to the queue at once (audited ``expired``); how many."""
    still_lapsed = and_(_C.status == TaskStatus.CLAIMED.value, _C.claimed_until < now)
    # RETURNING gives the new values: the holders whose claims ran out are read first.
    rows = await conn.execute(select(_C.task_id, _C.claimed_by).where(still_lapsed))
    holders: dict[str, str | None] = {task_id: holder for task_id, holder in rows}
    if not holders:
        return 0
    lapsed = (
        (
            await conn.execute(
                update(callback_tasks)
                .where(_C.task_id.in_(holders), still_lapsed)
                .values(status=TaskStatus.OPEN.value, claimed_by=None, claimed_until=None, updated_at=now)
                .returning(_C.task_id)
            )
        )
        .scalars()
        .all()
    )
    for task_id in lapsed:
        await _audit(conn, task_id, TaskEvent.EXPIRED, now, agent=holders[task_id])
        await publish_task(conn, task_id, now, view)
    return len(lapsed)


async def any_lapsed(conn: AsyncConnection, now: datetime) -> bool:
    """True when some claim has run out and is still marked claimed."""
    query = select(_C.task_id).where(_C.status == TaskStatus.CLAIMED.value, _C.claimed_until < now).limit(1)
    return (await conn.scalar(query)) is not None


async def expired_claims_total(conn: AsyncConnection) -> int:
    """Claims that ran out since the start (``/metrics``: ``recovery_callback_claims_expired_total``)."""
    query = select(func.count()).where(callback_events.c.kind == TaskEvent.EXPIRED.value)
    return int(await conn.scalar(query) or 0)


def _held_by(agent: str) -> ColumnElement[bool]:
    return and_(_C.status == TaskStatus.CLAIMED.value, _C.claimed_by == agent)


async def release(
    conn: AsyncConnection, task_id: str, agent: str, now: datetime, view: TaskViewSettings = DEFAULT_VIEW
) -> Refused | None:
    """Give the task back to the queue; only its holder may."""
    result = await conn.execute(
        update(callback_tasks)
        .where(_C.task_id == task_id, _held_by(agent))
        .values(status=TaskStatus.OPEN.value, claimed_by=None, claimed_until=None, updated_at=now)
        .returning(_C.task_id)
    )
    if result.first() is None:
        return await _refusal(conn, task_id, agent, now)
    await _audit(conn, task_id, TaskEvent.RELEASED, now, agent=agent)
    await publish_task(conn, task_id, now, view)
    return None


async def complete(
    conn: AsyncConnection,
    task_id: str,
    agent: str,
    completion: Completion,
    now: datetime,
    note: str | None = None,
    *,
    addresses: AddressKeys,
    policy: DeskPolicy = DEFAULT_POLICY,
) -> Refused | None:
    """Record the outcome; ``call_back_later`` and a ``no_answer`` with attempts left reopen the task."""
    # The UPDATE comes first (closing the task), so only the holder gets past it; a reopening follows.
    values: dict[str, Any] = {
        "status": TaskStatus.DONE.value,
        "outcome": completion.outcome.value,
        "agent": agent,
        "note": note,
        "claimed_by": None,
        "claimed_until": None,
        "updated_at": now,
        "completed_at": now,
    }
    result = await conn.execute(
        update(callback_tasks)
        .where(_C.task_id == task_id, _held_by(agent))
        .values(**values)
        .returning(_C.customer_key, _C.cart_id, _C.journey_id, _C.flow, _C.step)
    )
    row = result.first()
    if row is None:
        return await _refusal(conn, task_id, agent, now)
    await _audit(conn, task_id, TaskEvent.COMPLETED, now, agent=agent, outcome=completion.outcome.value, note=note)
    reopen_at = completion.reopen_at
    if completion.outcome is Outcome.NO_ANSWER and retries_left(await attempts_of(conn, task_id), policy.max_attempts):
        timezone = await conn.scalar(select(customers.c.timezone).where(customers.c.customer_key == row.customer_key))
        reopen_at = await plan_due_at(conn, now + policy.retry_after, timezone, policy)
    if reopen_at is not None:
        await conn.execute(
            update(callback_tasks)
            .where(_C.task_id == task_id)
            .values(status=TaskStatus.OPEN.value, due_at=reopen_at, completed_at=None)
        )
        await _audit(conn, task_id, TaskEvent.REOPENED, reopen_at)
    if completion.stop_calls:
        await _stop_calls(conn, task_id, row.customer_key, agent, completion.outcome, now, addresses, policy.view)
    await publish_task(conn, task_id, now, policy.view)
    await enqueue(conn, [_completed_event(task_id, row, agent, completion.outcome, now)])
    return None


async def attempts_of(conn: AsyncConnection, task_id: str) -> int:
    """How many times the task was completed (each outcome recorded is one attempt)."""
    query = select(func.count()).where(
        callback_events.c.task_id == task_id, callback_events.c.kind == TaskEvent.COMPLETED.value
    )
    return int(await conn.scalar(query) or 0)


async def _stop_calls(
    conn: AsyncConnection,
    task_id: str,
    customer_key: str,
    agent: str,
    outcome: Outcome,
    now: datetime,
    addresses: AddressKeys,
    view: TaskViewSettings,
) -> None:
    """No more calls to this shopper's number: a phone opt-out in the ledger, other open tasks closed."""
    source = ConsentSource.AGENT_DO_NOT_CALL if outcome is Outcome.DO_NOT_CALL else ConsentSource.AGENT_WRONG_NUMBER
    await record_consent(
        conn, customer_key, ConsentChannel.PHONE, consent=False, source=source, now=now, addresses=addresses
    )
    others = (
        await conn.execute(
            update(callback_tasks)
            .where(_C.customer_key == customer_key, _C.task_id != task_id, _C.status != TaskStatus.DONE.value)
            .values(status=TaskStatus.DONE.value, outcome=outcome.value, agent=agent, completed_at=now, updated_at=now)
            .returning(_C.task_id)
        )
    ).all()
    for (other,) in others:
        await _audit(conn, other, TaskEvent.COMPLETED, now, agent=agent, outcome=outcome.value, note=f"via {task_id}")
        await publish_task(conn, other, now, view)


def _completed_event(task_id: str, row: Row[Any], agent: str, outcome: Outcome, now: datetime) -> dict[str, Any]:
    """``callback.completed`` for ``recovery.messages`` (no phone number, no email address)."""
    payload = {
        "id": uuid.uuid4().hex,
        "type": PublishedType.CALLBACK_COMPLETED.value,
        "occurred_at": now.isoformat(),
        "cart_id": row.cart_id,
        "journey_id": row.journey_id,
        "flow": row.flow,
        "step": row.step,
        "channel": "callback",
        "task_id": task_id,
        "outcome": outcome.value,
        "agent": agent,
    }
    return {"topic_role": "messages", "key": payload["cart_id"], "payload": json.dumps(payload), "created_at": now}


async def reschedule(
    conn: AsyncConnection, task_id: str, due_at: datetime, now: datetime, view: TaskViewSettings = DEFAULT_VIEW
) -> bool:
    """Move an open task to a new due time (the shopper picked another slot); False if not open."""
    result = await conn.execute(
        update(callback_tasks)
        .where(_C.task_id == task_id, _C.status == TaskStatus.OPEN.value)
        .values(due_at=due_at, updated_at=now)
        .returning(_C.task_id)
    )
    if result.first() is None:
        return False
    await publish_task(conn, task_id, now, view)
    return True
