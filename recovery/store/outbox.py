"""The transactional outbox: events for Kafka written with the state change, relayed afterwards."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.states import PublishedType
from recovery.store.schema import outbox_events
from recovery.store.sql import for_update_skip_locked, insert_rows


@dataclass(frozen=True, kw_only=True)
class OutboxEvent:
    """One event waiting to be published; ``topic_role`` names a ``kafka.topics`` entry."""

    id: int
    topic_role: str
    key: str | None
    payload: str


def message_event(
    *,
    type_: PublishedType,
    now: datetime,
    cart_id: str,
    journey_id: str,
    flow: str,
    step: str | None = None,
    channel: str | None = None,
    message_id: str | None = None,
    reason: str | None = None,
    revenue: Any = None,
    answer: str | None = None,
    variant: str | None = None,
) -> dict[str, Any]:
    """A row for ``recovery.messages`` in the events.md shape (never an email or phone number)."""
    payload: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "type": type_.value,
        "occurred_at": now.isoformat(),
        "cart_id": cart_id,
        "journey_id": journey_id,
        "flow": flow,
        "step": step,
        "channel": channel,
    }
    if message_id is not None:
        payload["message_id"] = message_id
    if reason is not None:
        payload["reason"] = reason
    if revenue is not None:
        payload["revenue"] = float(revenue)
    if answer is not None:
        payload["answer"] = answer
    if variant is not None:
        payload["variant"] = variant
    return {"topic_role": "messages", "key": cart_id, "payload": json.dumps(payload), "created_at": now}


async def enqueue(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Add events to the outbox in the caller's transaction (one statement, whatever their number)."""
    await insert_rows(conn, outbox_events, rows)


async def take(conn: AsyncConnection, limit: int) -> list[OutboxEvent]:
    """The oldest waiting events, locked for this relay (PostgreSQL: other relays skip them)."""
    query = (
        select(outbox_events.c.id, outbox_events.c.topic_role, outbox_events.c.key, outbox_events.c.payload)
        .order_by(outbox_events.c.id)
        .limit(limit)
        .with_for_update(**for_update_skip_locked(conn))
    )
    return [OutboxEvent(**row) for row in (await conn.execute(query)).mappings()]


async def remove(conn: AsyncConnection, ids: list[int]) -> None:
    """Delete published events."""
    if ids:
        await conn.execute(delete(outbox_events).where(outbox_events.c.id.in_(ids)))
