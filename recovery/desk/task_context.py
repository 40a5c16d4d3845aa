"""What an agent knows about the shopper beyond this cart: earlier orders, earlier attempts, feedback, offer.

Batched per page of tasks (one query per kind, never one per task), read by ``task_view``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.desk.queue import TaskEvent
from recovery.store.schema import callback_events, carts, discount_codes, feedback_answers

EMPTY_HISTORY: dict[str, Any] = {"orders": 0, "revenue": "0.00", "currency": None, "last_order_at": None}


@dataclass(frozen=True, kw_only=True)
class TaskContext:
    """The shopper's context of one task, as the contract's ``Task`` fields."""

    notes: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, Any] = field(default_factory=lambda: dict(EMPTY_HISTORY))
    feedback: str | None = None
    offer: dict[str, Any] | None = None

    @property
    def attempts(self) -> int:
        """Completions so far: every recorded outcome is one attempt."""
        return len(self.notes)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def _notes(conn: AsyncConnection, task_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Every completion of each task, oldest first: who, when, with which outcome and note."""
    query = (
        select(callback_events.c.task_id, callback_events.c.at, callback_events.c.agent, callback_events.c.outcome)
        .add_columns(callback_events.c.note)
        .where(callback_events.c.task_id.in_(task_ids), callback_events.c.kind == TaskEvent.COMPLETED.value)
        .order_by(callback_events.c.at, callback_events.c.id)
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in (await conn.execute(query)).mappings():
        note = {"at": _iso(row["at"]), "by": row["agent"], "outcome": row["outcome"], "note": row["note"]}
        found.setdefault(row["task_id"], []).append(note)
    return found


async def _orders(conn: AsyncConnection, customer_keys: set[str]) -> dict[str, list[Mapping[Any, Any]]]:
    """Every ordered cart of these shoppers, oldest first."""
    query = (
        select(carts.c.customer_key, carts.c.cart_id, carts.c.order_value, carts.c.refunded_value)
        .add_columns(carts.c.currency, carts.c.ordered_at)
        .where(carts.c.customer_key.in_(customer_keys), carts.c.ordered_at.is_not(None))
        .order_by(carts.c.ordered_at)
    )
    found: dict[str, list[Mapping[Any, Any]]] = {}
    for row in (await conn.execute(query)).mappings():
        found.setdefault(row["customer_key"], []).append(row)
    return found


def summarise_orders(orders: Iterable[Mapping[Any, Any]], cart_id: str) -> dict[str, Any]:
    """``history``: the shopper's orders other than this cart's, revenue net of refunds, the latest currency."""
    count, revenue, currency, last = 0, Decimal(0), None, None
    for order in orders:
        if order["cart_id"] == cart_id:
            continue  # the cart being called about is not its own history
        count += 1
        revenue += max((order["order_value"] or Decimal(0)) - (order["refunded_value"] or Decimal(0)), Decimal(0))
        currency, last = order["currency"] or currency, order["ordered_at"]
    return {"orders": count, "revenue": f"{revenue:.2f}", "currency": currency, "last_order_at": _iso(last)}


async def _feedback(conn: AsyncConnection, journey_ids: set[str]) -> dict[str, str]:
    query = select(feedback_answers.c.journey_id, feedback_answers.c.answer).where(
        feedback_answers.c.journey_id.in_(journey_ids)
    )
    return {row.journey_id: row.answer for row in await conn.execute(query)}


def _offer_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    # A free-shipping offer (when the schema knows one) shows as such instead of a percentage.
    if row.get("kind") == "free_shipping" or row.get("free_shipping"):
        return {"code": row["code"], "free_shipping": True, "expires_at": _iso(row["expires_at"])}
    return {"code": row["code"], "percent": row["percent"], "expires_at": _iso(row["expires_at"])}


async def _offers(conn: AsyncConnection, journey_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The latest discount code each journey sent."""
    latest = (
        select(discount_codes.c.journey_id, func.max(discount_codes.c.created_at).label("created_at"))
        .where(discount_codes.c.journey_id.in_(journey_ids))
        .group_by(discount_codes.c.journey_id)
        .subquery()
    )
    query = select(discount_codes).join(
        latest,
        (latest.c.journey_id == discount_codes.c.journey_id) & (latest.c.created_at == discount_codes.c.created_at),
    )
    return {row["journey_id"]: _offer_json(row) for row in (await conn.execute(query)).mappings()}


async def contexts_for(conn: AsyncConnection, rows: Iterable[Mapping[Any, Any]]) -> dict[str, TaskContext]:
    """The context of each task row (``task_id``, ``journey_id``, ``customer_key``, ``cart_id``), by task id."""
    rows = list(rows)
    if not rows:
        return {}
    journey_ids = {row["journey_id"] for row in rows}
    notes = await _notes(conn, {row["task_id"] for row in rows})
    orders = await _orders(conn, {row["customer_key"] for row in rows})
    feedback = await _feedback(conn, journey_ids)
    offers = await _offers(conn, journey_ids)
    return {
        row["task_id"]: TaskContext(
            notes=notes.get(row["task_id"], []),
            history=summarise_orders(orders.get(row["customer_key"], []), row["cart_id"]),
            feedback=feedback.get(row["journey_id"]),
            offer=offers.get(row["journey_id"]),
        )
        for row in rows
    }
