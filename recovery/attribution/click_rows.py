"""What comes back about a sent message: tracked clicks and the provider's delivery receipts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.messages import MessageIdentity
from recovery.states import ChannelName, MessageState, PublishedType
from recovery.store.outbox import enqueue, message_event
from recovery.store.schema import carts, clicks, journeys, messages

# A receipt only moves a message that has left (or is leaving): never a pending, delivered or failed one.
_IN_FLIGHT = (MessageState.SENDING.value, MessageState.SENT.value)


class UserAgentClass(StrEnum):
    """The only trace of a browser kept with a click."""

    MOBILE = "mobile"
    DESKTOP = "desktop"
    BOT = "bot"
    UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class TrackedMessage(MessageIdentity):
    """The message a link belongs to, with its cart snapshot (whose URLs bound where links may lead)."""

    customer_key: str
    provider_id: str | None
    cart: dict[str, Any] | None


async def find_message(
    conn: AsyncConnection, message_id: str | None = None, *, provider_id: str | None = None
) -> TrackedMessage | None:
    """The message (by our id, else by the provider's) and its cart's JSON snapshot; ``None`` when none exists."""
    if not message_id and not provider_id:
        return None
    query = (
        select(
            messages.c.message_id,
            messages.c.journey_id,
            messages.c.cart_id,
            messages.c.customer_key,
            messages.c.flow,
            messages.c.step,
            messages.c.channel,
            messages.c.provider_id,
            carts.c.cart,
        )
        .select_from(messages.outerjoin(carts, carts.c.cart_id == messages.c.cart_id))
        .where(messages.c.message_id == message_id if message_id else messages.c.provider_id == provider_id)
    )
    row = (await conn.execute(query)).mappings().first()
    return None if row is None else TrackedMessage(**{**row, "channel": ChannelName(row["channel"])})


async def record_click(
    conn: AsyncConnection, message: TrackedMessage, *, user_agent_class: UserAgentClass, now: datetime
) -> bool:
    """Store the click; a human one also marks the journey clicked and publishes ``message.clicked``.

    Returns whether the click counted (False for bots, whose hits are kept only for auditing).
    """
    await conn.execute(
        clicks.insert().values(
            message_id=message.message_id,
            journey_id=message.journey_id,
            cart_id=message.cart_id,
            clicked_at=now,
            user_agent_class=user_agent_class.value,
        )
    )
    if user_agent_class == UserAgentClass.BOT:
        return False
    await conn.execute(update(journeys).where(journeys.c.journey_id == message.journey_id).values(clicked=True))
    await enqueue(conn, [_event(PublishedType.MESSAGE_CLICKED, message, now)])
    return True


async def mark_delivered(conn: AsyncConnection, message: TrackedMessage, *, now: datetime) -> bool:
    """Move an in-flight message to ``delivered`` and publish it; False when it was not in flight."""
    moved = await _move(conn, message, MessageState.DELIVERED, now)
    if moved:
        await enqueue(conn, [_event(PublishedType.MESSAGE_DELIVERED, message, now)])
    return moved


async def mark_failed(
    conn: AsyncConnection, message: TrackedMessage, *, error_code: str | None, error: str, reason: str, now: datetime
) -> bool:
    """Move an in-flight message to ``failed`` with the provider's code and publish it with ``reason``."""
    moved = await _move(conn, message, MessageState.FAILED, now, error_code=error_code, error=error)
    if moved:
        await enqueue(conn, [_event(PublishedType.MESSAGE_FAILED, message, now, reason=reason)])
    return moved


async def _move(
    conn: AsyncConnection, message: TrackedMessage, state: MessageState, now: datetime, **values: Any
) -> bool:
    # Conditional on the current state: a retried or out-of-order receipt changes nothing twice.
    result = await conn.execute(
        update(messages)
        .where(messages.c.message_id == message.message_id, messages.c.state.in_(_IN_FLIGHT))
        .values(state=state.value, updated_at=now, **values)
    )
    return bool(result.rowcount)


def _event(type_: PublishedType, message: TrackedMessage, now: datetime, reason: str | None = None) -> dict[str, Any]:
    return message_event(
        type_=type_,
        now=now,
        cart_id=message.cart_id,
        journey_id=message.journey_id,
        flow=message.flow,
        step=message.step,
        channel=message.channel,
        message_id=message.message_id,
        reason=reason,
    )
