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
from recovery.attribution.recovery_section import recovery_figures
from recovery.attribution.render import render_html, render_table
from recovery.attribution.variant_rows import variant_figures
from recovery.desk.queue import TaskEvent
from recovery.events import CheckoutStep, PaymentFailureReason
from recovery.states import ConversionKind, MessageState
from recovery.store.amounts import money, money_text
from recovery.store.schema import callback_events, callback_tasks, carts, journeys

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
        recovery, totals = await recovery_figures(conn, scope.journeys())
        lift_section = await lift_figures(conn, scope.journeys())
        callbacks = await _callbacks(conn, scope)
        currencies = await _currencies(conn, scope)
        by_currency = await money_by_currency(conn, scope.carts(), scope.journeys())
        versions = await template_versions(conn, scope.journeys())
        variants = await variant_figures(conn, scope.journeys())
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
        "variants": variants,
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
    """Where carts stop in checkout, why payments fail, and what was bought."""
    window = scope.carts()
    reached, abandoned_at = await _checkout_steps(conn, window)
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
    return _funnel_figures(counts, refunded=money(refunded))


async def _checkout_steps(
    conn: AsyncConnection, window: list[ColumnElement[bool]]
) -> tuple[dict[CheckoutStep, int], dict[CheckoutStep, int]]:
    """Carts that reached each checkout step, and abandoned carts by the last step they reached."""
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
    return reached, abandoned_at


def _funnel_figures(counts: FunnelCounts, *, refunded: Decimal) -> dict[str, Any]:
    """The funnel section as JSON-ready data."""
    rates = funnel_rates(counts)
    reached, abandoned_at, failures = counts.reached, counts.abandoned_at, counts.payment_failures
    return {
        "carts_created": counts.carts_created,
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
        "orders": counts.orders,
        "buyers": counts.buyers,
        "conversion_rate": rates.conversion_rate,
        "revenue": money_text(counts.revenue),
        "refunded": money_text(refunded),
        "average_order_value": money_text(rates.average_order_value),
    }


async def _callbacks(conn: AsyncConnection, scope: _Scope) -> dict[str, Any]:
    """Agent callback tasks of the period: status, outcomes, reach rate, revenue per outcome and agent."""
    links = (
        select(callback_events.c.task_id, func.min(callback_events.c.at).label("link_sent_at"))
        .where(callback_events.c.kind == TaskEvent.LINK_SENT.value)
        .group_by(callback_events.c.task_id)
        .subquery()
    )
    tasks = (
        callback_tasks.join(journeys, journeys.c.journey_id == callback_tasks.c.journey_id)
        .outerjoin(carts, carts.c.cart_id == callback_tasks.c.cart_id)
        .outerjoin(links, links.c.task_id == callback_tasks.c.task_id)
    )
    query = select(
        links.c.link_sent_at,
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
            link_sent_at=row.link_sent_at,
        )
        for row in await conn.execute(query.where(*scope.journeys()))
    ]
    return callback_figures(rows)


async def _currencies(conn: AsyncConnection, scope: _Scope) -> list[str]:
    window = scope.carts()
    seen = select(carts.c.currency).distinct().where(carts.c.currency.is_not(None), *window)
    return sorted({str(c) for c in (await conn.scalars(seen))})


async def stores_seen(engine: AsyncEngine) -> list[str]:
    """Every store some cart came from, sorted: the dashboard's store filter."""
    async with engine.connect() as conn:
        return sorted(str(store) for store in await conn.scalars(select(carts.c.store).distinct()))
