"""The report's recovery section: attributed orders by flow, step and channel, and their totals.

An order counts when ``conversions`` credits it to a message (kind ``clicked`` or ``sent_no_click``),
each order once, revenue net of refunds. A flow's rate is over its treated journeys; a step's over the
journeys messaged at that step; a channel's over the journeys messaged on that channel.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.states import ConversionKind, MessageState
from recovery.store.amounts import money, money_text, net_of_refunds
from recovery.store.schema import conversions, journeys, messages

_SENT = [MessageState.SENT.value, MessageState.DELIVERED.value]
_RECOVERED = [ConversionKind.CLICKED.value, ConversionKind.SENT_NO_CLICK.value]

Window = Sequence[ColumnElement[bool]]  # conditions on ``journeys``: the report's period and store


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(kw_only=True)
class _Tally:
    """Recovery figures of one flow, step or channel, added up while reading grouped rows."""

    journeys: int = 0
    messages_sent: int = 0
    clicked_orders: int = 0
    clicked_revenue: Decimal = Decimal(0)
    no_click_orders: int = 0
    no_click_revenue: Decimal = Decimal(0)
    revenue: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)

    def add_orders(self, kind: str, orders: int, revenue: Decimal, refunded: Decimal, net: Decimal) -> None:
        self.revenue += revenue
        self.refunded += refunded
        if kind == ConversionKind.CLICKED:
            self.clicked_orders += orders
            self.clicked_revenue += net
        else:
            self.no_click_orders += orders
            self.no_click_revenue += net

    def as_dict(self, key: dict[str, str]) -> dict[str, Any]:
        recovered = self.clicked_orders + self.no_click_orders
        return key | {
            "journeys": self.journeys,
            "messages_sent": self.messages_sent,
            "recovered_orders": recovered,
            "recovery_rate": _rate(recovered, self.journeys),
            "recovered_revenue": money_text(self.clicked_revenue + self.no_click_revenue),
            "gross_revenue": money_text(self.revenue),
            "refunded": money_text(self.refunded),
            "clicked_orders": self.clicked_orders,
            "clicked_revenue": money_text(self.clicked_revenue),
            "no_click_orders": self.no_click_orders,
            "no_click_revenue": money_text(self.no_click_revenue),
        }


@dataclass(kw_only=True)
class _Tallies:
    """Every tally of the section, filled by one query after another."""

    by_flow: defaultdict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    by_step: defaultdict[tuple[str, str], _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    by_channel: defaultdict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    total: _Tally = field(default_factory=_Tally)
    holdout_journeys: int = 0


async def recovery_figures(conn: AsyncConnection, window: Window) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attributed recoveries by flow, step and channel; and the totals, each order counted once."""
    tallies = _Tallies()
    await _count_journeys(conn, window, tallies)
    await _count_messages(conn, window, tallies)
    await _add_credited_orders(conn, window, tallies)
    holdout_orders = await conn.scalar(
        select(func.count())
        .select_from(conversions.join(journeys, journeys.c.journey_id == conversions.c.journey_id))
        .where(conversions.c.kind == ConversionKind.HOLDOUT.value, *window)
    )
    by_flow, by_step, by_channel, total = tallies.by_flow, tallies.by_step, tallies.by_channel, tallies.total
    total.journeys = sum(t.journeys for t in by_flow.values())
    total.messages_sent = sum(t.messages_sent for t in by_flow.values())
    recovery = {
        "by_flow": [by_flow[f].as_dict({"flow": f}) for f in sorted(by_flow)],
        "by_step": [by_step[k].as_dict({"flow": k[0], "step": k[1]}) for k in sorted(by_step)],
        "by_channel": [by_channel[c].as_dict({"channel": c}) for c in sorted(by_channel)],
    }
    totals = total.as_dict({}) | {"holdout_journeys": tallies.holdout_journeys, "holdout_orders": holdout_orders or 0}
    return recovery, totals


async def _count_journeys(conn: AsyncConnection, window: Window, tallies: _Tallies) -> None:
    """Treated journeys per flow; holdout journeys in one count."""
    started = select(journeys.c.flow, journeys.c.holdout, func.count()).where(*window)
    for flow, holdout, n in await conn.execute(started.group_by(journeys.c.flow, journeys.c.holdout)):
        if holdout:
            tallies.holdout_journeys += n
        else:
            tallies.by_flow[flow].journeys += n


async def _count_messages(conn: AsyncConnection, window: Window, tallies: _Tallies) -> None:
    """Messages sent per flow, step and channel; journeys messaged per step and per channel."""
    sent = (
        select(messages.c.flow, messages.c.step, messages.c.channel, func.count())
        .join(journeys, journeys.c.journey_id == messages.c.journey_id)
        .where(messages.c.state.in_(_SENT), *window)
    )
    for flow, step, channel, n in await conn.execute(
        sent.group_by(messages.c.flow, messages.c.step, messages.c.channel)
    ):
        tallies.by_flow[flow].messages_sent += n
        # One message per journey and step: a step's messages are its journeys.
        tallies.by_step[(flow, step)].messages_sent += n
        tallies.by_step[(flow, step)].journeys += n
        tallies.by_channel[channel].messages_sent += n
    reached = (
        select(messages.c.channel, func.count(distinct(messages.c.journey_id)))
        .join(journeys, journeys.c.journey_id == messages.c.journey_id)
        .where(messages.c.state.in_(_SENT), *window)
        .group_by(messages.c.channel)
    )
    for channel, n in await conn.execute(reached):
        tallies.by_channel[channel].journeys = n


async def _add_credited_orders(conn: AsyncConnection, window: Window, tallies: _Tallies) -> None:
    """Credited orders and their revenue, into their flow, step, channel and the total."""
    net = net_of_refunds(conversions.c.revenue, conversions.c.refunded)
    credited = (
        select(
            conversions.c.flow,
            conversions.c.step,
            conversions.c.channel,
            conversions.c.kind,
            func.count(),
            func.sum(conversions.c.revenue),
            func.sum(conversions.c.refunded),
            func.sum(net),
        )
        .join(journeys, journeys.c.journey_id == conversions.c.journey_id)
        .where(conversions.c.kind.in_(_RECOVERED), *window)
        .group_by(conversions.c.flow, conversions.c.step, conversions.c.channel, conversions.c.kind)
    )
    for flow, step, channel, kind, n, revenue, refunded, net_revenue in await conn.execute(credited):
        amounts = (money(revenue), money(refunded), money(net_revenue))
        for tally in (tallies.by_flow[flow], tallies.by_step[(flow, step)], tallies.by_channel[channel], tallies.total):
            tally.add_orders(kind, n, *amounts)
