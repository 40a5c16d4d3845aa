"""Report sections that never add currencies: money per currency, template versions, feedback answers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.states import ConversionKind, MessageState
from recovery.store.amounts import money, money_text, net_of_refunds
from recovery.store.schema import carts, clicks, conversions, feedback_answers, journeys, messages

_SENT = [MessageState.SENT.value, MessageState.DELIVERED.value]
_RECOVERED = [ConversionKind.CLICKED.value, ConversionKind.SENT_NO_CLICK.value]
_UNKNOWN = "???"  # a cart that never said its currency: still never added to another one


def _per_order(total: Decimal, orders: int) -> str | None:
    return money_text(total / orders) if orders else None


async def money_by_currency(
    conn: AsyncConnection, cart_window: Sequence[ColumnElement[bool]], journey_window: Sequence[ColumnElement[bool]]
) -> dict[str, dict[str, Any]]:
    """``{currency: {orders, revenue, refunded, average_order_value, recovered_*}}``, one currency each."""
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    ordered = (
        select(carts.c.currency, func.count(), func.sum(carts.c.order_value), func.sum(carts.c.refunded_value))
        .where(carts.c.ordered_at.is_not(None), *cart_window)
        .group_by(carts.c.currency)
    )
    for currency, orders, revenue, refunded in await conn.execute(ordered):
        found[currency or _UNKNOWN] |= {
            "orders": orders,
            "revenue": money_text(money(revenue)),
            "refunded": money_text(money(refunded)),
            "average_order_value": _per_order(money(revenue), orders),
        }
    net = net_of_refunds(conversions.c.revenue, conversions.c.refunded)
    recovered = (
        select(carts.c.currency, conversions.c.kind, func.count(), func.sum(net))
        .select_from(
            conversions.join(journeys, journeys.c.journey_id == conversions.c.journey_id).join(
                carts, carts.c.cart_id == conversions.c.cart_id
            )
        )
        .where(conversions.c.kind.in_(_RECOVERED), *journey_window)
        .group_by(carts.c.currency, conversions.c.kind)
    )
    tallies: dict[str, dict[str, tuple[int, Decimal]]] = defaultdict(dict)
    for currency, kind, orders, amount in await conn.execute(recovered):
        tallies[currency or _UNKNOWN][kind] = (orders, money(amount))
    for currency, kinds in tallies.items():
        clicked = kinds.get(ConversionKind.CLICKED.value, (0, Decimal(0)))
        no_click = kinds.get(ConversionKind.SENT_NO_CLICK.value, (0, Decimal(0)))
        found[currency] |= {
            "recovered_orders": clicked[0] + no_click[0],
            "recovered_revenue": money_text(clicked[1] + no_click[1]),
            "clicked_revenue": money_text(clicked[1]),
            "no_click_revenue": money_text(no_click[1]),
        }
    return {currency: _complete(figures) for currency, figures in sorted(found.items())}


def _complete(figures: dict[str, Any]) -> dict[str, Any]:
    zero = money_text(Decimal(0))
    defaults = {"orders": 0, "revenue": zero, "refunded": zero, "average_order_value": None, "recovered_orders": 0}
    defaults |= {"recovered_revenue": zero, "clicked_revenue": zero, "no_click_revenue": zero}
    return defaults | figures


async def template_versions(
    conn: AsyncConnection, journey_window: Sequence[ColumnElement[bool]]
) -> list[dict[str, Any]]:
    """Sends, clicked messages, recovered orders and revenue (per currency) of each template version."""
    key = (messages.c.template, messages.c.channel, messages.c.template_version)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    sent_join = messages.join(journeys, journeys.c.journey_id == messages.c.journey_id)
    sent = (
        select(*key, func.count(), func.count(distinct(clicks.c.message_id)))
        .select_from(sent_join.outerjoin(clicks, clicks.c.message_id == messages.c.message_id))
        .where(messages.c.state.in_(_SENT), messages.c.template.is_not(None), *journey_window)
        .group_by(*key)
    )
    for template, channel, version, n, clicked in await conn.execute(sent):
        rows[(template, channel, version or "")] = {
            "template": template,
            "channel": channel,
            "version": version or "",
            "sent": n,
            "clicked": clicked,
            "recovered_orders": 0,
            "recovered_revenue": {},
        }
    net = net_of_refunds(conversions.c.revenue, conversions.c.refunded)
    credited = (
        select(*key, carts.c.currency, func.count(), func.sum(net))
        .select_from(
            conversions.join(messages, messages.c.message_id == conversions.c.message_id)
            .join(journeys, journeys.c.journey_id == conversions.c.journey_id)
            .join(carts, carts.c.cart_id == conversions.c.cart_id)
        )
        .where(conversions.c.kind.in_(_RECOVERED), messages.c.template.is_not(None), *journey_window)
        .group_by(*key, carts.c.currency)
    )
    for template, channel, version, currency, orders, amount in await conn.execute(credited):
        row = rows.get((template, channel, version or ""))
        if row is not None:
            row["recovered_orders"] += orders
            row["recovered_revenue"][currency or _UNKNOWN] = money_text(money(amount))
    return [rows[k] for k in sorted(rows)]


async def feedback_answers_of(
    conn: AsyncConnection, journey_window: Sequence[ColumnElement[bool]]
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """``{answer: journeys}`` and ``{store: {answer: journeys}}`` for journeys of the period."""
    query = (
        select(feedback_answers.c.store, feedback_answers.c.answer, func.count())
        .select_from(feedback_answers.join(journeys, journeys.c.journey_id == feedback_answers.c.journey_id))
        .where(*journey_window)
        .group_by(feedback_answers.c.store, feedback_answers.c.answer)
    )
    total: dict[str, int] = defaultdict(int)
    by_store: dict[str, dict[str, int]] = defaultdict(dict)
    for store, answer, n in await conn.execute(query):
        total[answer] += n
        by_store[store][answer] = n
    return dict(sorted(total.items())), {store: dict(sorted(a.items())) for store, a in sorted(by_store.items())}


async def recovered_by_day(
    conn: AsyncConnection, journey_window: Sequence[ColumnElement[bool]]
) -> list[dict[str, Any]]:
    """Net recovered revenue per order day, channel and currency (never added across currencies)."""
    day = func.date(conversions.c.ordered_at)
    net = net_of_refunds(conversions.c.revenue, conversions.c.refunded)
    query = (
        select(day, conversions.c.channel, conversions.c.currency, func.count(), func.sum(net))
        .select_from(conversions.join(journeys, journeys.c.journey_id == conversions.c.journey_id))
        .where(conversions.c.kind.in_(_RECOVERED), *journey_window)
        .group_by(day, conversions.c.channel, conversions.c.currency)
        .order_by(day)
    )
    return [
        {"day": str(when), "channel": channel, "currency": currency, "orders": n, "revenue": money_text(money(amount))}
        for when, channel, currency, n, amount in await conn.execute(query)
    ]
