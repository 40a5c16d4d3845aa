"""Per step and variant of the A/B splits: sent, clicked, recovered orders, revenue, conversion and the
difference between variants, each with its 95 % interval (the maths is ``variant_compare.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.attribution.variant_compare import VariantCounts, compare_all, conversion
from recovery.states import ConversionKind, MessageState
from recovery.store.amounts import money, money_text, net_of_refunds
from recovery.store.schema import carts, clicks, conversions, journeys, messages

_SENT = [MessageState.SENT.value, MessageState.DELIVERED.value]
_RECOVERED = [ConversionKind.CLICKED.value, ConversionKind.SENT_NO_CLICK.value]
_KEY = (messages.c.flow, messages.c.step, messages.c.variant)


async def variant_figures(conn: AsyncConnection, journey_window: Sequence[ColumnElement[bool]]) -> list[dict[str, Any]]:
    """``[{flow, step, variants: [...], differences: [...]}]`` for every split step with a sent message."""
    counts: dict[tuple[str, str, str], dict[str, Any]] = {}
    sent = (
        select(*_KEY, func.count(distinct(messages.c.message_id)), func.count(distinct(clicks.c.message_id)))
        .select_from(
            messages.join(journeys, journeys.c.journey_id == messages.c.journey_id).outerjoin(
                clicks, clicks.c.message_id == messages.c.message_id
            )
        )
        .where(messages.c.state.in_(_SENT), messages.c.variant.is_not(None), *journey_window)
        .group_by(*_KEY)
    )
    for flow, step, variant, n, clicked in await conn.execute(sent):
        counts[(flow, step, variant)] = {"sent": n, "clicked": clicked, "converted": 0, "orders": 0, "revenue": {}}
    credited = (
        select(
            *_KEY,
            carts.c.currency,
            func.count(),
            func.count(distinct(conversions.c.message_id)),
            func.sum(net_of_refunds(conversions.c.revenue, conversions.c.refunded)),
        )
        .select_from(
            conversions.join(messages, messages.c.message_id == conversions.c.message_id)
            .join(journeys, journeys.c.journey_id == conversions.c.journey_id)
            .join(carts, carts.c.cart_id == conversions.c.cart_id)
        )
        .where(conversions.c.kind.in_(_RECOVERED), messages.c.variant.is_not(None), *journey_window)
        .group_by(*_KEY, carts.c.currency)
    )
    for flow, step, variant, currency, orders, converted, amount in await conn.execute(credited):
        row = counts.get((flow, step, variant))
        if row is not None:
            row["orders"] += orders
            row["converted"] += converted
            row["revenue"][currency or "?"] = money_text(money(amount))
    return _by_step(counts)


def _by_step(counts: dict[tuple[str, str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    steps: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for (flow, step, variant), row in sorted(counts.items()):
        steps.setdefault((flow, step), []).append((variant, row))
    found = []
    for (flow, step), rows in steps.items():
        measured = [
            VariantCounts(variant=v, sent=r["sent"], clicked=r["clicked"], converted=r["converted"]) for v, r in rows
        ]
        variants = []
        for figures, (variant, row) in zip(measured, rows, strict=True):
            rate, low, high = conversion(figures)
            variants.append(
                {
                    "variant": variant,
                    "sent": row["sent"],
                    "clicked": row["clicked"],
                    "recovered_orders": row["orders"],
                    "recovered_revenue": row["revenue"],
                    "conversion": rate,
                    "conversion_ci": [low, high],
                }
            )
        differences = [
            {
                "variant": d.variant,
                "baseline": d.baseline,
                "difference": d.difference,
                "ci": [d.ci_low, d.ci_high],
                "significant": d.significant,
                "verdict": d.words,
            }
            for d in compare_all(measured)
        ]
        found.append({"flow": flow, "step": step, "variants": variants, "differences": differences})
    return found


async def step_revenue(conn: AsyncConnection) -> dict[tuple[str, str], dict[str, str]]:
    """``{(flow, step): {currency: net recovered revenue}}``: never summed across currencies, never withheld."""
    net = func.sum(net_of_refunds(conversions.c.revenue, conversions.c.refunded))
    query = (
        select(conversions.c.flow, conversions.c.step, conversions.c.currency, net)
        .where(conversions.c.kind.in_(_RECOVERED), conversions.c.step.is_not(None))
        .group_by(conversions.c.flow, conversions.c.step, conversions.c.currency)
    )
    found: dict[tuple[str, str], dict[str, str]] = {}
    for flow, step, currency, amount in await conn.execute(query):
        found.setdefault((flow, step), {})[currency] = money_text(money(amount)) or "0.00"
    return found
