"""Callback tasks for support agents: created once per message, published on every change."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.store.outbox import enqueue
from recovery.store.schema import callback_tasks, carts, customers
from recovery.store.sql import insert_ignore


class TaskStatus(StrEnum):
    """Where a callback task is."""

    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"


@dataclass(frozen=True, kw_only=True)
class NewTask:
    """What creating a task needs."""

    message_id: str
    journey_id: str
    cart_id: str
    customer_key: str
    flow: str
    step: str


def task_id_for(message_id: str) -> str:
    """Deterministic: one message can create one task only."""
    return "task-" + hashlib.sha256(message_id.encode()).hexdigest()[:24]


async def create_task(conn: AsyncConnection, task: NewTask, now: datetime) -> tuple[str, bool]:
    """Create the task if it does not exist; return its id and whether it is new."""
    task_id = task_id_for(task.message_id)
    exists = await conn.scalar(select(callback_tasks.c.task_id).where(callback_tasks.c.task_id == task_id))
    if exists:
        return task_id, False
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
            }
        ],
    )
    await publish_task(conn, task_id, now)
    return task_id, True


async def task_exists(conn: AsyncConnection, message_id: str) -> bool:
    """True when the message already created its task."""
    found = await conn.scalar(select(callback_tasks.c.task_id).where(callback_tasks.c.message_id == message_id))
    return found is not None


async def move_task(
    conn: AsyncConnection,
    task_id: str,
    *,
    to: TaskStatus,
    now: datetime,
    agent: str | None = None,
    outcome: str | None = None,
    note: str | None = None,
    expected: TaskStatus | None = None,
) -> bool:
    """Change a task's status (only from ``expected`` when given); publish the change."""
    query = update(callback_tasks).where(callback_tasks.c.task_id == task_id)
    if expected is not None:
        query = query.where(callback_tasks.c.status == expected.value)
    values: dict[str, Any] = {"status": to.value, "updated_at": now}
    if agent is not None:
        values["agent"] = agent
    if outcome is not None:
        values["outcome"] = outcome
    if note is not None:
        values["note"] = note
    result = await conn.execute(query.values(**values))
    if not result.rowcount:
        return False
    await publish_task(conn, task_id, now)
    return True


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


async def publish_task(conn: AsyncConnection, task_id: str, now: datetime) -> None:
    """Put the task's current state on ``recovery.callback-tasks`` (through the outbox)."""
    document = await task_document(conn, task_id)
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
