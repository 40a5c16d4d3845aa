"""Callback figures for the report and ``/api/stats``: tasks, reach rate, outcomes and revenue per agent.

An order on the task's cart within ``window`` after a ``reached_*`` outcome, or after the agent sent the
shopper the link during the call (``send-link``), is credited to the call (net of refunds). The figures
are a pure function of the rows, tested by tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from recovery.desk.queue import Outcome

DEFAULT_WINDOW = timedelta(days=5)
_REACHED = frozenset(o.value for o in Outcome if o.reached)


@dataclass(frozen=True, kw_only=True)
class CallbackRow:
    """One task of the period with its cart's order (if any)."""

    status: str
    outcome: str | None
    agent: str | None
    completed_at: datetime | None
    ordered_at: datetime | None
    order_value: Decimal | None
    refunded: Decimal | None
    link_sent_at: datetime | None = None  # the first link the agent sent from the task


def credited(row: CallbackRow, window: timedelta) -> Decimal | None:
    """The net revenue credited to the call, or ``None`` when the order does not follow a conversation."""
    if row.ordered_at is None:
        return None
    starts = [row.completed_at] if row.outcome in _REACHED and row.completed_at is not None else []
    starts += [row.link_sent_at] if row.link_sent_at is not None else []
    if not any(start <= row.ordered_at <= start + window for start in starts):
        return None
    return max((row.order_value or Decimal(0)) - (row.refunded or Decimal(0)), Decimal(0))


@dataclass
class _Tally:
    tasks: int = 0
    done: int = 0
    reached: int = 0
    orders: int = 0
    revenue: Decimal = Decimal(0)

    def add(self, row: CallbackRow, revenue: Decimal | None) -> None:
        self.tasks += 1
        self.done += row.status == "done"
        self.reached += row.outcome in _REACHED
        if revenue is not None:
            self.orders += 1
            self.revenue += revenue

    def as_dict(self, extra: dict[str, Any]) -> dict[str, Any]:
        rate = self.reached / self.done if self.done else None
        figures = {"tasks": self.tasks, "reached": self.reached, "reach_rate": rate}
        return extra | figures | {"orders": self.orders, "revenue": f"{self.revenue:.2f}"}


def callback_figures(rows: Iterable[CallbackRow], window: timedelta = DEFAULT_WINDOW) -> dict[str, Any]:
    """``by_status``, ``by_outcome`` (counts), totals, and ``outcomes`` / ``agents`` with revenue."""
    by_status: dict[str, int] = defaultdict(int)
    by_outcome: dict[str, int] = defaultdict(int)
    total = _Tally()
    outcomes: dict[str, _Tally] = defaultdict(_Tally)
    agents: dict[str, _Tally] = defaultdict(_Tally)
    for row in rows:
        revenue = credited(row, window)
        by_status[row.status] += 1
        total.add(row, revenue)
        if row.outcome:
            by_outcome[row.outcome] += 1
            outcomes[row.outcome].add(row, revenue)
        if row.agent:
            agents[row.agent].add(row, revenue)
    return {
        "by_status": dict(sorted(by_status.items())),
        "by_outcome": dict(sorted(by_outcome.items())),
        **total.as_dict({}),
        "outcomes": [outcomes[o].as_dict({"outcome": o}) for o in sorted(outcomes)],
        "agents": [agents[a].as_dict({"agent": a}) for a in sorted(agents)],
    }
