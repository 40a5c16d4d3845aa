"""Funnel, recovery, lift and callback figures from the store: ``recovery report`` and ``GET /api/stats``.

``build_stats`` returns JSON-ready data (str, int, float, None, lists and dicts). Money is a string with
two decimals (``"129.90"``), as shop platforms send it, so no figure goes through binary floating point;
rates are fractions in [0, 1], ``None`` when their denominator is 0.

Two ways of counting recoveries are used on purpose:

* ``recovery`` is attribution: orders credited to a message (``conversions`` rows of kind ``clicked`` or
  ``sent_no_click``), each order once, revenue net of refunds. A recovery rate is over the flow's treated
  journeys, the journeys messaged at that step, or the journeys messaged on that channel;
* ``lift`` compares every treated journey with every holdout journey (intention to treat): a journey is
  recovered when its cart was ordered after the journey's trigger, whether or not a message gets credit
  (see ``recovery.attribution.lift_section`` for why attribution cannot be used there).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.attribution.callbacks import CallbackRow, callback_figures
from recovery.attribution.funnel import CHECKOUT_STEPS, FunnelCounts, funnel_rates
from recovery.attribution.lift_section import lift_figures
from recovery.attribution.money import (
    feedback_answers_of,
    money_by_currency,
    recovered_by_day,
    template_versions,
)
from recovery.attribution.render import render_html, render_table
from recovery.events import CheckoutStep, PaymentFailureReason
from recovery.states import ConversionKind, MessageState
from recovery.store.amounts import money, money_text, net_of_refunds
from recovery.store.schema import callback_tasks, carts, conversions, journeys, messages

__all__ = ["build_stats", "render_html", "render_table"]

_STEP_NAMES = frozenset(step.value for step in CheckoutStep)
_REASON_NAMES = frozenset(reason.value for reason in PaymentFailureReason)
_SENT = [MessageState.SENT.value, MessageState.DELIVERED.value]
_RECOVERED = [ConversionKind.CLICKED.value, ConversionKind.SENT_NO_CLICK.value]


async def build_stats(
    engine: AsyncEngine, *, since: datetime | None, now: datetime, store: str | None = None
) -> dict[str, Any]:
    """Every figure for carts first seen and journeys started at or after ``since`` (of one ``store``)."""
    scope = _Scope(since=since, store=store)
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # One snapshot for every query, so the sections add up while orders keep arriving.
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        funnel = await _funnel(conn, scope)
        recovery, totals = await _recovery(conn, scope)
        lift_section = await lift_figures(conn, scope.journeys())
        callbacks = await _callbacks(conn, scope)
        currencies = await _currencies(conn, scope)
        by_currency = await money_by_currency(conn, scope.carts(), scope.journeys())
        versions = await template_versions(conn, scope.journeys())
        feedback, feedback_by_store = await feedback_answers_of(conn, scope.journeys())
        by_day = await recovered_by_day(conn, scope.journeys())
    warnings = []
    if len(currencies) > 1:
        mixed = ", ".join(currencies)
        warnings.append(f"amounts in {mixed} are never added together: see the money per currency")
        funnel, recovery, lift_section, totals = withhold_amounts((funnel, recovery, lift_section, totals))
    return {
        "generated_at": now.isoformat(),
        "since": since.isoformat() if since else None,
        "store": store,
        "currencies": currencies,
        "warnings": warnings,
        "funnel": funnel,
        "recovery": recovery,
        "lift": lift_section,
        "callbacks": callbacks,
        "totals": totals,
        "money": by_currency,
        "template_versions": versions,
        "feedback": feedback,
        "feedback_by_store": feedback_by_store,
        "recovered_by_day": by_day,
    }


# Figures that add amounts; with several currencies they are withheld (``None``) rather than wrong.
_AMOUNT_KEYS = frozenset(
    {"revenue", "refunded", "average_order_value", "recovered_revenue", "gross_revenue", "clicked_revenue",
     "no_click_revenue", "incremental_revenue"}
)  # fmt: skip


def withhold_amounts(value: Any) -> Any:
    """A copy of ``value`` with every summed amount set to ``None`` (counts and rates are kept)."""
    if isinstance(value, dict):
        return {k: None if k in _AMOUNT_KEYS else withhold_amounts(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(withhold_amounts(v) for v in value)
    return value


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True, kw_only=True)
class _Scope:
    """Which carts and journeys the report covers."""

    since: datetime | None
    store: str | None

    def carts(self) -> list[ColumnElement[bool]]:
        return self._where(carts.c.first_event_at, carts.c.store)

    def journeys(self) -> list[ColumnElement[bool]]:
        return self._where(journeys.c.started_at, journeys.c.store)

    def _where(self, started: Any, store: Any) -> list[ColumnElement[bool]]:
        found = [] if self.since is None else [started >= self.since]
        return found if self.store is None else [*found, store == self.store]


async def _funnel(conn: AsyncConnection, scope: _Scope) -> dict[str, Any]:
    window = scope.carts()
    reached_by_last: dict[CheckoutStep, int] = defaultdict(int)
    abandoned_at: dict[CheckoutStep, int] = defaultdict(int)
    by_step = select(carts.c.checkout_step, func.count(), func.count(carts.c.abandoned_at)).where(*window)
    for step, n, abandoned in await conn.execute(by_step.group_by(carts.c.checkout_step)):
        # A cart with no checkout event stopped at the cart itself.
        last = CheckoutStep(step) if step in _STEP_NAMES else CheckoutStep.CART
        reached_by_last[last] += n
        abandoned_at[last] += abandoned
    reached = {}
    for index, step in enumerate(CHECKOUT_STEPS):
        reached[step] = sum(reached_by_last[later] for later in CHECKOUT_STEPS[index:])

    # ``payment`` keeps the cart's last failure; JSON null and SQL NULL both read as no reason.
    reason = carts.c.payment["reason"].as_string()
    failures: dict[PaymentFailureReason, int] = defaultdict(int)
    query = select(reason, func.count()).where(reason.is_not(None), *window).group_by(reason)
    for name, n in await conn.execute(query):
        failures[PaymentFailureReason(name) if name in _REASON_NAMES else PaymentFailureReason.OTHER] += n

    ordered = carts.c.ordered_at.is_not(None)
    totals = (
        await conn.execute(
            select(
                func.count(),
                func.count(carts.c.ordered_at),
                func.count(distinct(case((ordered, carts.c.customer_key)))),
                # Carts that tried to pay: a failure on record, or an order.
                func.coalesce(func.sum(case((or_(reason.is_not(None), ordered), 1), else_=0)), 0),
                func.sum(case((ordered, carts.c.order_value))),
                func.sum(case((ordered, carts.c.refunded_value))),
            ).where(*window)
        )
    ).one()
    created, orders, buyers, attempts, revenue, refunded = totals
    counts = FunnelCounts(
        carts_created=created,
        reached=reached,
        abandoned_at=abandoned_at,
        payment_failures=failures,
        payment_attempts=int(attempts),
        orders=orders,
        buyers=buyers,
        revenue=money(revenue),
    )
    rates = funnel_rates(counts)
    return {
        "carts_created": created,
        "steps": [
            {
                "step": step.value,
                "reached": reached[step],
                "abandoned": abandoned_at[step],
                "abandonment_rate": rates.abandonment_rate_by_last_step[step],
                "drop_off_rate": rates.drop_off_rate_by_step[step],
            }
            for step in CHECKOUT_STEPS
        ],
        "abandoned": sum(abandoned_at.values()),
        "abandonment_rate": rates.abandonment_rate,
        "payment_attempts": counts.payment_attempts,
        "payment_failures": sum(failures.values()),
        "payment_failure_rate": rates.payment_failure_rate,
        "payment_failures_by_reason": [
            {"reason": reason.value, "failures": failures[reason], "rate": rates.payment_failure_rate_by_reason[reason]}
            for reason in sorted(failures, key=lambda r: (-failures[r], r.value))
        ],
        "orders": orders,
        "buyers": buyers,
        "conversion_rate": rates.conversion_rate,
        "revenue": money_text(counts.revenue),
        "refunded": money_text(money(refunded)),
        "average_order_value": money_text(rates.average_order_value),
    }


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


async def _recovery(conn: AsyncConnection, scope: _Scope) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attributed recoveries by flow, step and channel; and the totals, each order counted once."""
    window = scope.journeys()
    by_flow: dict[str, _Tally] = defaultdict(_Tally)
    by_step: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    by_channel: dict[str, _Tally] = defaultdict(_Tally)
    holdout_journeys = 0
    started = select(journeys.c.flow, journeys.c.holdout, func.count()).where(*window)
    for flow, holdout, n in await conn.execute(started.group_by(journeys.c.flow, journeys.c.holdout)):
        if holdout:
            holdout_journeys += n
        else:
            by_flow[flow].journeys += n

    sent = (
        select(messages.c.flow, messages.c.step, messages.c.channel, func.count())
        .join(journeys, journeys.c.journey_id == messages.c.journey_id)
        .where(messages.c.state.in_(_SENT), *window)
    )
    for flow, step, channel, n in await conn.execute(
        sent.group_by(messages.c.flow, messages.c.step, messages.c.channel)
    ):
        by_flow[flow].messages_sent += n
        # One message per journey and step: a step's messages are its journeys.
        by_step[(flow, step)].messages_sent += n
        by_step[(flow, step)].journeys += n
        by_channel[channel].messages_sent += n
    reached = (
        select(messages.c.channel, func.count(distinct(messages.c.journey_id)))
        .join(journeys, journeys.c.journey_id == messages.c.journey_id)
        .where(messages.c.state.in_(_SENT), *window)
        .group_by(messages.c.channel)
    )
    for channel, n in await conn.execute(reached):
        by_channel[channel].journeys = n

    total = _Tally()
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
        for tally in (by_flow[flow], by_step[(flow, step)], by_channel[channel], total):
            tally.add_orders(kind, n, *amounts)
    holdout_orders = await conn.scalar(
        select(func.count())
        .select_from(conversions.join(journeys, journeys.c.journey_id == conversions.c.journey_id))
        .where(conversions.c.kind == ConversionKind.HOLDOUT.value, *window)
    )
    total.journeys = sum(t.journeys for t in by_flow.values())
    total.messages_sent = sum(t.messages_sent for t in by_flow.values())
    recovery = {
        "by_flow": [by_flow[f].as_dict({"flow": f}) for f in sorted(by_flow)],
        "by_step": [by_step[k].as_dict({"flow": k[0], "step": k[1]}) for k in sorted(by_step)],
        "by_channel": [by_channel[c].as_dict({"channel": c}) for c in sorted(by_channel)],
    }
    totals = total.as_dict({}) | {"holdout_journeys": holdout_journeys, "holdout_orders": holdout_orders or 0}
    return recovery, totals


async def _callbacks(conn: AsyncConnection, scope: _Scope) -> dict[str, Any]:
    """Agent callback tasks of the period: status, outcomes, reach rate, revenue per outcome and agent."""
    tasks = callback_tasks.join(journeys, journeys.c.journey_id == callback_tasks.c.journey_id).outerjoin(
        carts, carts.c.cart_id == callback_tasks.c.cart_id
    )
    query = select(
        callback_tasks.c.status,
        callback_tasks.c.outcome,
        callback_tasks.c.agent,
        callback_tasks.c.completed_at,
        carts.c.ordered_at,
        carts.c.order_value,
        carts.c.refunded_value,
    ).select_from(tasks)
    rows = [
        CallbackRow(
            status=row.status,
            outcome=row.outcome,
            agent=row.agent,
            completed_at=row.completed_at,
            ordered_at=row.ordered_at,
            order_value=row.order_value,
            refunded=row.refunded_value,
        )
        for row in await conn.execute(query.where(*scope.journeys()))
    ]
    return callback_figures(rows)


async def _currencies(conn: AsyncConnection, scope: _Scope) -> list[str]:
    window = scope.carts()
    seen = select(carts.c.currency).distinct().where(carts.c.currency.is_not(None), *window)
    return sorted({str(c) for c in (await conn.scalars(seen))})
