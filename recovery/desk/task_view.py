"""Callback tasks as agents see them (the contract's ``Task``): shopper, cart, payment, messages sent, history.

One serializer for the Agents' API, the ``/agent`` page and the ``recovery.callback-tasks`` topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.desk.hours import zone_of
from recovery.desk.queue import TaskStatus, is_late
from recovery.desk.task_context import TaskContext, contexts_for
from recovery.store.schema import callback_tasks, carts, clicks, customers, messages
from recovery.stores import StoreDirectory, StoreIdentity

_C = callback_tasks.c
STATUSES = tuple(status.value for status in TaskStatus)


@dataclass(frozen=True, kw_only=True)
class TaskViewSettings:
    """What the view needs from configuration: the SLA, how many attempts a task gets, the stores' names."""

    sla: timedelta = timedelta(minutes=15)
    max_attempts: int = 3
    stores: StoreDirectory = field(default_factory=StoreDirectory)


DEFAULT_VIEW = TaskViewSettings()


def store_json(store: StoreIdentity) -> dict[str, str]:
    """The contract's ``Task.store``: its id, and its name (the id when no name is configured)."""
    return {"id": store.id, "name": store.name or store.id}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _status(row: Mapping[Any, Any], now: datetime) -> str:
    """A claim that ran out shows as open: anyone may take it."""
    lapsed = row["status"] == TaskStatus.CLAIMED.value and row["claimed_until"] and row["claimed_until"] < now
    return TaskStatus.OPEN.value if lapsed else str(row["status"])


def _cart(row: Mapping[Any, Any]) -> dict[str, Any]:
    snapshot = row["cart"] or {}
    items = [
        {"name": item.get("name"), "quantity": item.get("quantity"), "unit_price": item.get("unit_price")}
        for item in snapshot.get("items", [])
    ]
    value = row["value"]
    return {
        "value": float(value) if value is not None else None,
        "currency": row["currency"],
        "items": items,
        "restore_url": snapshot.get("restore_url"),
        "checkout_step": row["checkout_step"],
    }


def task_json(
    row: Mapping[Any, Any],
    sent: Sequence[Mapping[str, Any]],
    now: datetime,
    view: TaskViewSettings = DEFAULT_VIEW,
    context: TaskContext | None = None,
) -> dict[str, Any]:
    """One ``Task`` in the contract's shape, plus ``late`` (past the SLA) and ``note`` (the latest one)."""
    context = context or TaskContext()
    status = _status(row, now)
    zone = zone_of(row["timezone"])
    due_at: datetime | None = row["due_at"]
    return {
        "id": row["task_id"],
        "cart_id": row["cart_id"],
        "status": status,
        "priority": row["priority"],
        "reason": row["reason"],
        "due_at": _iso(due_at),
        "created_at": _iso(row["created_at"]),
        "claimed_by": row["claimed_by"] if status == TaskStatus.CLAIMED.value else None,
        "claimed_until": _iso(row["claimed_until"]) if status == TaskStatus.CLAIMED.value else None,
        "outcome": row["outcome"],
        "note": row["note"],
        "late": status != TaskStatus.DONE.value and due_at is not None and is_late(due_at, now, view.sla),
        "attempts": context.attempts,
        "max_attempts": view.max_attempts,
        "customer": {
            "name": row["first_name"],
            "email": row["email"],
            "phone": row["phone"],
            "locale": row["locale"],
            "timezone": zone.key,
            "local_time": now.astimezone(zone).isoformat(timespec="minutes"),
        },
        "cart": _cart(row),
        "payment": {"reason": row["payment"]["reason"]} if row["payment"] else None,
        "messages": [
            {"channel": m["channel"], "step": m["step"], "sent_at": _iso(m["sent_at"]), "clicked": m["clicked"]}
            for m in sent
        ],
        "notes": context.notes,
        "history": context.history,
        "feedback": context.feedback,
        "offer": context.offer,
        "store": store_json(view.stores.get(row["store"])),
    }


def _base_query() -> Any:
    return select(
        callback_tasks,
        customers.c.first_name,
        customers.c.email,
        customers.c.phone,
        customers.c.locale,
        customers.c.timezone,
        carts.c.cart,
        carts.c.store,
        carts.c.value,
        carts.c.currency,
        carts.c.checkout_step,
        carts.c.payment,
        carts.c.store,
    ).select_from(
        callback_tasks.outerjoin(customers, customers.c.customer_key == _C.customer_key).outerjoin(
            carts, carts.c.cart_id == _C.cart_id
        )
    )


async def _messages_of(conn: AsyncConnection, journey_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Messages already sent per journey (callbacks excluded), with whether each was clicked."""
    if not journey_ids:
        return {}
    clicked = select(clicks.c.message_id).where(clicks.c.user_agent_class != "bot").distinct().subquery()
    query = (
        select(
            messages.c.journey_id,
            messages.c.channel,
            messages.c.step,
            messages.c.sent_at,
            case((clicked.c.message_id.is_not(None), True), else_=False).label("clicked"),
        )
        .outerjoin(clicked, clicked.c.message_id == messages.c.message_id)
        .where(
            messages.c.journey_id.in_(journey_ids),
            messages.c.sent_at.is_not(None),
            messages.c.channel != "callback",
        )
        .order_by(messages.c.sent_at)
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in (await conn.execute(query)).mappings():
        found.setdefault(row["journey_id"], []).append(dict(row))
    return found


async def _as_tasks(
    conn: AsyncConnection, rows: Sequence[Mapping[Any, Any]], now: datetime, view: TaskViewSettings
) -> list[dict[str, Any]]:
    """Task rows as ``Task`` documents, with their messages and context read in a few batched queries."""
    sent = await _messages_of(conn, {row["journey_id"] for row in rows})
    contexts = await contexts_for(conn, rows)
    return [task_json(row, sent.get(row["journey_id"], []), now, view, contexts[row["task_id"]]) for row in rows]


async def get_task(
    conn: AsyncConnection, task_id: str, now: datetime, view: TaskViewSettings = DEFAULT_VIEW
) -> dict[str, Any] | None:
    """One task, or ``None``."""
    row = (await conn.execute(_base_query().where(_C.task_id == task_id))).mappings().first()
    if row is None:
        return None
    return (await _as_tasks(conn, [row], now, view))[0]


def _status_filter(status: str, now: datetime) -> Any:
    lapsed = and_(_C.status == TaskStatus.CLAIMED.value, _C.claimed_until < now)
    if status == TaskStatus.OPEN.value:
        return or_(_C.status == TaskStatus.OPEN.value, lapsed)
    if status == TaskStatus.CLAIMED.value:
        return and_(_C.status == TaskStatus.CLAIMED.value, _C.claimed_until >= now)
    return _C.status == TaskStatus.DONE.value


async def list_tasks(
    conn: AsyncConnection, status: str, limit: int, now: datetime, view: TaskViewSettings = DEFAULT_VIEW
) -> list[dict[str, Any]]:
    """Tasks of one status: open ones due first, by priority then due time; done ones latest first."""
    query = _base_query().where(_status_filter(status, now)).limit(limit)
    if status == TaskStatus.DONE.value:
        query = query.order_by(_C.completed_at.desc(), _C.task_id)
    else:
        # A task not due yet (a chosen slot, a call back later) waits below every task that is due.
        not_due = case((_C.due_at > now, 1), else_=0)
        query = query.order_by(not_due, _C.priority.desc(), _C.due_at, _C.created_at, _C.task_id)
    rows = (await conn.execute(query)).mappings().all()
    return await _as_tasks(conn, rows, now, view)
