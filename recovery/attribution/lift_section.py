"""The report's lift section: treated against holdout journeys, by flow and by step, intention to treat.

A journey is recovered when its cart was ordered at or after the journey's trigger, whether or not a
message gets credit. Attribution (``conversions``) cannot be used here: it needs a message within a
window, which the control group never has, so it would favour the treated group by construction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.attribution.lift import MIN_GROUP_SIZE, Lift, lift
from recovery.states import CancelReason, SkipReason, StepStatus
from recovery.store.amounts import money, money_text, net_of_refunds
from recovery.store.schema import carts, journeys, steps

# A step counts once it came due for a journey still running. Holdout journeys are skipped (``holdout``)
# after the step's condition is checked and before any other guard, so a treated step skipped for
# consent or the frequency cap still counts, as its holdout twin does; a false condition counts on
# neither side, and a step cancelled by the order never came due.
_CAME_DUE = [StepStatus.SENT.value, StepStatus.FAILED.value, StepStatus.SKIPPED.value]
_NEVER_DUE = [SkipReason.CONDITION_FALSE.value, CancelReason.ORDER_COMPLETED.value]


async def lift_figures(conn: AsyncConnection, where: Sequence[ColumnElement[bool]]) -> dict[str, Any]:
    """Lift by flow and by step over the journeys matching ``where``."""
    recovered = and_(carts.c.ordered_at.is_not(None), carts.c.ordered_at >= journeys.c.trigger_event_at)
    outcome = (
        func.count(),
        func.coalesce(func.sum(case((recovered, 1), else_=0)), 0),
        func.sum(case((recovered, net_of_refunds(carts.c.order_value, carts.c.refunded_value)), else_=0)),
    )
    with_carts = journeys.outerjoin(carts, carts.c.cart_id == journeys.c.cart_id)
    flows = await conn.execute(
        select(journeys.c.flow, journeys.c.holdout, *outcome)
        .select_from(with_carts)
        .where(*where)
        .group_by(journeys.c.flow, journeys.c.holdout)
    )
    due = and_(steps.c.status.in_(_CAME_DUE), or_(steps.c.reason.is_(None), steps.c.reason.not_in(_NEVER_DUE)))
    by_step = await conn.execute(
        select(journeys.c.flow, steps.c.name, journeys.c.holdout, *outcome)
        .select_from(steps.join(with_carts, journeys.c.journey_id == steps.c.journey_id))
        .where(due, *where)
        .group_by(journeys.c.flow, steps.c.name, journeys.c.holdout)
    )
    return {
        "by_flow": _rows(((flow,), *rest) for flow, *rest in flows),
        "by_step": _rows(((flow, step), *rest) for flow, step, *rest in by_step),
    }


def why_not_significant(result: Lift, *, treated_n: int, control_n: int) -> str | None:
    """Why a lift is not (yet) significant, in words a marketer can act on; ``None`` when it is."""
    if result.significant:
        return None
    if control_n == 0:
        return "no holdout journeys: set guards.holdout_percent to measure lift"
    if min(treated_n, control_n) < MIN_GROUP_SIZE:
        return f"fewer than {MIN_GROUP_SIZE} journeys in a group"
    return "the 95 % interval includes 0"


def _rows(grouped: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, ...], dict[bool, tuple[int, int, Decimal]]] = defaultdict(dict)
    for key, holdout, n, recovered, revenue in grouped:
        groups[key][bool(holdout)] = (n, int(recovered), money(revenue))
    out: list[dict[str, Any]] = []
    empty = (0, 0, Decimal("0.00"))
    for key in sorted(groups):
        treated_n, treated_recovered, treated_revenue = groups[key].get(False, empty)
        control_n, control_recovered, control_revenue = groups[key].get(True, empty)
        result = lift(
            treated_n=treated_n,
            treated_recovered=treated_recovered,
            control_n=control_n,
            control_recovered=control_recovered,
            treated_revenue=treated_revenue,
            control_revenue=control_revenue,
        )
        names: dict[str, Any] = {"flow": key[0]} | ({"step": key[1]} if len(key) > 1 else {})
        out.append(
            names
            | {
                "treated": _group(treated_n, treated_recovered, result.treated_rate, treated_revenue),
                "control": _group(control_n, control_recovered, result.control_rate, control_revenue),
                "absolute_lift": result.absolute_lift,
                "relative_lift": result.relative_lift,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
                "significant": result.significant,
                "incremental_revenue": money_text(result.incremental_revenue),
                "verdict": result.verdict.value,
                "reason": why_not_significant(result, treated_n=treated_n, control_n=control_n),
            }
        )
    return out


def _group(n: int, recovered: int, rate: float, revenue: Decimal) -> dict[str, Any]:
    return {"journeys": n, "recovered": recovered, "rate": rate if n else None, "revenue": money_text(revenue)}
