"""Callback tasks for support agents: created once per message, published on every change."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.desk.capacity import HOUR, hour_of, per_hour_counts, plan_due
from recovery.desk.hours import zone_of
from recovery.desk.policy import DEFAULT_POLICY, DeskPolicy
from recovery.desk.queue import TaskEvent, TaskReason, TaskStatus, priority
from recovery.desk.task_view import DEFAULT_VIEW, TaskViewSettings, get_task
from recovery.messages import MessageIdentity
from recovery.states import ChannelName
from recovery.store.outbox import enqueue
from recovery.store.schema import (
    callback_events,
    callback_requests,
    callback_tasks,
    carts,
    customers,
    journeys,
    messages,
)
from recovery.store.sql import for_update_skip_locked, insert_ignore


@dataclass(frozen=True, kw_only=True)
class NewTask(MessageIdentity):
    """What creating a task needs: the callback message it comes from, and whom to call."""

    customer_key: str
    reason: TaskReason = TaskReason.FLOW
    due_at: datetime | None = None  # None: the next moment inside the calling hours


def task_id_for(message_id: str) -> str:
    """Deterministic: one message can create one task only."""
    return "task-" + hashlib.sha256(message_id.encode()).hexdigest()[:24]


async def due_counts(conn: AsyncConnection, start: datetime, end: datetime) -> Counter[datetime]:
    """Tasks not done that fall due in each clock hour between ``start`` and ``end`` (capacity)."""
    query = select(callback_tasks.c.due_at).where(
        callback_tasks.c.status != TaskStatus.DONE.value,
        callback_tasks.c.due_at >= hour_of(start),
        callback_tasks.c.due_at < end,
    )
    return per_hour_counts(due for (due,) in await conn.execute(query))


async def plan_due_at(
    conn: AsyncConnection, earliest: datetime, timezone: str | None, policy: DeskPolicy, *, store: str | None = None
) -> datetime:
    """The first time from ``earliest`` in the shopper's calling hours (``store``'s calendar) with room for a call."""
    counts = await due_counts(conn, earliest, earliest + 31 * 24 * HOUR) if policy.per_hour else Counter()
    return plan_due(earliest, zone_of(timezone), policy.hours.for_store(store), counts, policy.per_hour)


async def create_task(
    conn: AsyncConnection, task: NewTask, now: datetime, *, policy: DeskPolicy = DEFAULT_POLICY
) -> tuple[str, bool]:
    """Create the task if it does not exist (due in the calling hours, with room); return its id and if new."""
    task_id = task_id_for(task.message_id)
    exists = await conn.scalar(select(callback_tasks.c.task_id).where(callback_tasks.c.task_id == task_id))
    if exists:
        return task_id, False
    timezone = await conn.scalar(select(customers.c.timezone).where(customers.c.customer_key == task.customer_key))
    cart = (await conn.execute(select(carts.c.value, carts.c.store).where(carts.c.cart_id == task.cart_id))).first()
    value, store = (cart.value, cart.store) if cart is not None else (None, None)
    # In calling hours, with room, never on the store's public holidays or closed days (the one calendar).
    due_at = task.due_at or await plan_due_at(conn, now, timezone, policy, store=store)
    await insert_ignore(
        conn,
        callback_tasks,
        [
            {
                "task_id": task_id,
                "message_id": task.message_id,
                "journey_id": task.journey_id,
                "cart_id": task.cart_id,
                "customer_key": task.customer_key,
                "flow": task.flow,
                "step": task.step,
                "status": TaskStatus.OPEN.value,
                "created_at": now,
                "updated_at": now,
                "reason": task.reason.value,
                "priority": priority(task.reason, value),
                "due_at": due_at,
                "webhook_next_at": now,
            }
        ],
    )
    await conn.execute(callback_events.insert().values(task_id=task_id, kind=TaskEvent.CREATED.value, at=now))
    await publish_task(conn, task_id, now, policy.view)
    return task_id, True


async def task_exists(conn: AsyncConnection, message_id: str) -> bool:
    """True when the message already created its task."""
    found = await conn.scalar(select(callback_tasks.c.task_id).where(callback_tasks.c.message_id == message_id))
    return found is not None


async def task_document(conn: AsyncConnection, task_id: str) -> dict[str, Any]:
    """The task as agents and contact-centre tools see it (with the number to call)."""
    query = (
        select(
            callback_tasks,
            customers.c.phone,
            customers.c.first_name,
            customers.c.locale,
            customers.c.timezone,
            carts.c.value,
            carts.c.currency,
            carts.c.payment,
        )
        .select_from(
            callback_tasks.outerjoin(customers, customers.c.customer_key == callback_tasks.c.customer_key).outerjoin(
                carts, carts.c.cart_id == callback_tasks.c.cart_id
            )
        )
        .where(callback_tasks.c.task_id == task_id)
    )
    row = (await conn.execute(query)).mappings().one()
    return {
        "task_id": row["task_id"],
        "status": row["status"],
        "journey_id": row["journey_id"],
        "cart_id": row["cart_id"],
        "flow": row["flow"],
        "step": row["step"],
        "agent": row["agent"],
        "outcome": row["outcome"],
        "reason": row["reason"],
        "priority": row["priority"],
        "due_at": row["due_at"].isoformat() if row["due_at"] else None,
        "claimed_by": row["claimed_by"],
        "claimed_until": row["claimed_until"].isoformat() if row["claimed_until"] else None,
        "phone": row["phone"],
        "first_name": row["first_name"],
        "locale": row["locale"],
        "timezone": row["timezone"],
        "cart_value": float(row["value"]) if row["value"] is not None else None,
        "currency": row["currency"],
        "payment_reason": (row["payment"] or {}).get("reason"),
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


async def publish_task(
    conn: AsyncConnection, task_id: str, now: datetime, view: TaskViewSettings = DEFAULT_VIEW
) -> None:
    """Put the task's current state on ``recovery.callback-tasks`` (through the outbox), as the API's ``Task``."""
    document = await get_task(conn, task_id, now, view)
    if document is None:
        return
    await enqueue(
        conn,
        [
            {
                "topic_role": "callback_tasks",
                "key": document["cart_id"],
                "payload": json.dumps(document),
                "created_at": now,
            }
        ],
    )


async def tasks_from_requests(
    conn: AsyncConnection, now: datetime, limit: int = 100, *, policy: DeskPolicy = DEFAULT_POLICY
) -> int:
    """Turn accepted callback offers (a RAPPEL / CALL reply) into tasks; return how many requests were handled.

    The task belongs to the customer's latest callback message (the offer they answered), else to their
    latest journey. A request from an unknown number cannot be called back: it is closed with no task.
    """
    pending = (
        await conn.execute(
            select(callback_requests.c.id, callback_requests.c.customer_key)
            .where(callback_requests.c.task_id.is_(None))
            .order_by(callback_requests.c.received_at)
            .limit(limit)
            .with_for_update(**for_update_skip_locked(conn))
        )
    ).all()
    for request_id, customer_key in pending:
        task_id = await _task_for_customer(conn, customer_key, request_id, now, policy) if customer_key else None
        await conn.execute(
            update(callback_requests).where(callback_requests.c.id == request_id).values(task_id=task_id or NO_TASK)
        )
    return len(pending)


NO_TASK = "none"  # marks a request handled that could not become a task (unknown number)


async def _task_for_customer(
    conn: AsyncConnection, customer_key: str, request_id: str, now: datetime, policy: DeskPolicy
) -> str | None:
    offer = (
        await conn.execute(
            select(messages.c.message_id, messages.c.journey_id, messages.c.cart_id, messages.c.flow, messages.c.step)
            .where(messages.c.customer_key == customer_key, messages.c.channel == "callback")
            .order_by(messages.c.created_at.desc())
            .limit(1)
        )
    ).first()
    if offer is None:
        journey = (
            await conn.execute(
                select(journeys.c.journey_id, journeys.c.cart_id, journeys.c.flow)
                .where(journeys.c.customer_key == customer_key)
                .order_by(journeys.c.started_at.desc())
                .limit(1)
            )
        ).first()
        if journey is None:
            return None
        source = NewTask(
            message_id=f"request:{request_id}",
            journey_id=journey.journey_id,
            cart_id=journey.cart_id,
            customer_key=customer_key,
            flow=journey.flow,
            step="reply",
            channel=ChannelName.CALLBACK,
            reason=TaskReason.CALLBACK_REQUESTED,
        )
    else:
        source = NewTask(
            message_id=offer.message_id,
            journey_id=offer.journey_id,
            cart_id=offer.cart_id,
            customer_key=customer_key,
            flow=offer.flow,
            step=offer.step,
            channel=ChannelName.CALLBACK,
            reason=TaskReason.CALLBACK_REQUESTED,
        )
    task_id, _new = await create_task(conn, source, now, policy=policy)
    return task_id


async def task_for_offer(
    conn: AsyncConnection,
    message_id: str,
    now: datetime,
    *,
    due_at: datetime | None = None,
    policy: DeskPolicy = DEFAULT_POLICY,
) -> str | None:
    """The shopper accepted the callback offer ``message_id`` (its link), for ``due_at`` or the next open slot."""
    offer = (
        await conn.execute(
            select(
                messages.c.message_id,
                messages.c.journey_id,
                messages.c.cart_id,
                messages.c.customer_key,
                messages.c.flow,
                messages.c.step,
            ).where(messages.c.message_id == message_id)
        )
    ).first()
    if offer is None:
        return None
    task_id, _new = await create_task(
        conn,
        NewTask(
            message_id=offer.message_id,
            journey_id=offer.journey_id,
            cart_id=offer.cart_id,
            customer_key=offer.customer_key,
            flow=offer.flow,
            step=offer.step,
            channel=ChannelName.CALLBACK,
            reason=TaskReason.CALLBACK_REQUESTED,
            due_at=due_at,
        ),
        now,
        policy=policy,
    )
    return task_id
