"""Recording orders and refunds in ``conversions``: the store side of attribution.

``record_order`` gathers what the pure ``attribute`` needs (the cart's sent messages and their human
clicks) and keeps its answer. An order no message explains is still recorded when the cart had a holdout
journey (kind ``holdout``): the control group's orders, which no message may take credit for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.attribution.click_rows import UserAgentClass
from recovery.attribution.credit import (
    DEFAULT_CLICK_WINDOW,
    DEFAULT_SEND_WINDOW,
    AttributionModel,
    Click,
    Conversion,
    Order,
    SentMessage,
    apply_refund,
    attribute,
)
from recovery.states import ChannelName, ConversionKind, MessageState, PublishedType
from recovery.store.outbox import enqueue, message_event
from recovery.store.schema import clicks, conversions, journeys, messages
from recovery.store.sql import insert_ignore


async def record_order(
    conn: AsyncConnection,
    *,
    order_id: str,
    cart_id: str,
    value: Decimal,
    currency: str,
    occurred_at: datetime,
    model: AttributionModel,
    click_window: timedelta = DEFAULT_CLICK_WINDOW,
    send_window: timedelta = DEFAULT_SEND_WINDOW,
) -> Conversion | None:
    """Credit an order to one of its cart's messages and record it; ``None`` when no message gets credit.

    A holdout journey's order is recorded (kind ``holdout``) but returns ``None``; recording the same
    order again changes nothing.
    """
    order = Order(order_id=order_id, cart_id=cart_id, value=value, currency=currency, occurred_at=occurred_at)
    sent = await _sent_messages(conn, cart_id)
    conversion = attribute(
        order,
        sent.values(),
        await _clicks(conn, cart_id),
        model,
        click_window=click_window,
        send_window=send_window,
    )
    row = {
        "order_id": order_id,
        "cart_id": cart_id,
        "model": model.value,
        "revenue": value,
        "refunded": Decimal(0),
        "currency": currency,
        "ordered_at": occurred_at,
    }
    if conversion is None:
        await _record_holdout_order(conn, row, cart_id=cart_id, occurred_at=occurred_at)
        return None
    await _record_credited_order(conn, row, conversion, sent[conversion.message_id], order)
    return conversion


async def _record_credited_order(
    conn: AsyncConnection, row: dict[str, Any], conversion: Conversion, message: SentMessage, order: Order
) -> None:
    """Keep the credited order and publish ``journey.converted`` (once per order)."""
    if not await _recorded(conn, order.order_id):
        # Once per attributed order, whatever the journey's state (it may have completed long ago).
        await enqueue(
            conn,
            [
                message_event(
                    type_=PublishedType.JOURNEY_CONVERTED,
                    now=order.occurred_at,
                    cart_id=order.cart_id,
                    journey_id=message.journey_id,
                    flow=conversion.flow,
                    step=conversion.step,
                    channel=conversion.channel.value,
                    message_id=conversion.message_id,
                    revenue=order.value,
                )
            ],
        )
    credited = {
        "journey_id": message.journey_id,
        "message_id": conversion.message_id,
        "flow": conversion.flow,
        "step": conversion.step,
        "channel": conversion.channel.value,
        "template": conversion.template or None,
        "kind": conversion.kind.value,
        "holdout": False,
        "time_to_convert_s": conversion.time_to_convert.total_seconds(),
    }
    await insert_ignore(conn, conversions, [row | credited])


async def _record_holdout_order(
    conn: AsyncConnection, row: dict[str, Any], *, cart_id: str, occurred_at: datetime
) -> None:
    """Keep an order no message explains when the cart's shopper was in the control group."""
    # The latest holdout journey already running when the shopper bought.
    query = (
        select(journeys.c.journey_id, journeys.c.flow, journeys.c.trigger_event_at)
        .where(journeys.c.cart_id == cart_id, journeys.c.holdout.is_(True), journeys.c.trigger_event_at <= occurred_at)
        .order_by(journeys.c.trigger_event_at.desc(), journeys.c.journey_id.desc())
        .limit(1)
    )
    journey = (await conn.execute(query)).first()
    if journey is None:
        return
    holdout = {
        "journey_id": journey.journey_id,
        "message_id": None,
        "flow": journey.flow,
        "step": None,
        "channel": None,
        "template": None,
        "kind": ConversionKind.HOLDOUT.value,
        "holdout": True,
        "time_to_convert_s": (occurred_at - journey.trigger_event_at).total_seconds(),
    }
    await insert_ignore(conn, conversions, [row | holdout])


async def record_refund(conn: AsyncConnection, *, order_id: str, value: Decimal, now: datetime) -> Decimal | None:
    """Add a refund to a recorded order; return the revenue left (never below 0), ``None`` if not recorded."""
    apply_refund(Decimal(0), value)  # rejects a negative refund before anything is written
    await conn.execute(
        update(conversions).where(conversions.c.order_id == order_id).values(refunded=conversions.c.refunded + value)
    )
    found = (
        await conn.execute(
            select(
                conversions.c.revenue,
                conversions.c.refunded,
                conversions.c.cart_id,
                conversions.c.journey_id,
                conversions.c.flow,
                conversions.c.message_id,
                conversions.c.holdout,
            ).where(conversions.c.order_id == order_id)
        )
    ).first()
    if found is None:
        return None
    if not found.holdout and found.journey_id is not None:
        # The deduction is published like the conversion was: the refunded amount, on the same journey.
        await enqueue(
            conn,
            [
                message_event(
                    type_=PublishedType.JOURNEY_REFUNDED,
                    now=now,
                    cart_id=found.cart_id,
                    journey_id=found.journey_id,
                    flow=found.flow,
                    message_id=found.message_id,
                    revenue=value,
                )
            ],
        )
    return apply_refund(found.revenue, found.refunded)


async def _recorded(conn: AsyncConnection, order_id: str) -> bool:
    """Whether this order's conversion is already recorded (a redelivered order.completed)."""
    return await conn.scalar(select(conversions.c.order_id).where(conversions.c.order_id == order_id)) is not None


async def _sent_messages(conn: AsyncConnection, cart_id: str) -> dict[str, SentMessage]:
    """Messages of the cart's journeys, whatever their status, that actually left."""
    query = select(
        messages.c.message_id,
        messages.c.journey_id,
        messages.c.cart_id,
        messages.c.flow,
        messages.c.step,
        messages.c.channel,
        messages.c.template,
        messages.c.sent_at,
    ).where(
        messages.c.cart_id == cart_id,
        messages.c.state.in_([MessageState.SENT.value, MessageState.DELIVERED.value]),
        messages.c.sent_at.is_not(None),
    )
    return {
        row.message_id: SentMessage(
            message_id=row.message_id,
            journey_id=row.journey_id,
            cart_id=row.cart_id,
            flow=row.flow,
            step=row.step,
            channel=ChannelName(row.channel),
            template=row.template or "",
            sent_at=row.sent_at,
        )
        for row in await conn.execute(query)
    }


async def _clicks(conn: AsyncConnection, cart_id: str) -> list[Click]:
    """The cart's human clicks: a link scanner's hit is kept for auditing, never credited."""
    query = select(clicks.c.message_id, clicks.c.clicked_at).where(
        clicks.c.cart_id == cart_id, clicks.c.user_agent_class != UserAgentClass.BOT.value
    )
    return [Click(message_id=row.message_id, clicked_at=row.clicked_at) for row in await conn.execute(query)]
