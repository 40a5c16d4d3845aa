"""The dashboard's charts: server-side SVG drawn from the same figures as ``recovery report``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from recovery.attribution.charts import Series, bar_chart
from recovery.attribution.lift import proportion_ci_wilson

_WIDTH, _HEIGHT = 620, 300


def _list(stats: Mapping[str, Any], section: str, name: str) -> list[dict[str, Any]]:
    found = (stats.get(section) or {}).get(name)
    return found if isinstance(found, list) else []


def _rate_series(rows: list[dict[str, Any]], group: str, name: str) -> Series:
    """Recovery rates in % with their Wilson 95 % interval."""
    values: list[float | None] = []
    intervals: list[tuple[float, float] | None] = []
    for row in rows:
        figures = row.get(group) or {}
        n, recovered = int(figures.get("journeys") or 0), int(figures.get("recovered") or 0)
        if n:
            low, high = proportion_ci_wilson(recovered, n)
            values.append(recovered / n * 100)
            intervals.append((low * 100, high * 100))
        else:
            values.append(None)
            intervals.append(None)
    return Series(name=name, values=values, intervals=intervals)


def _revenue_over_time(stats: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One chart per currency: net recovered revenue per day, a bar per channel."""
    by_currency: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in stats.get("recovered_by_day") or []:
        by_currency[str(row["currency"])][str(row["channel"])][str(row["day"])] = float(row["revenue"] or 0)
    charts = []
    for currency, channels in sorted(by_currency.items()):
        days = sorted({day for values in channels.values() for day in values})
        series = [Series(name=ch, values=[values.get(d) for d in days]) for ch, values in sorted(channels.items())]
        title = f"Recovered revenue per day by channel ({currency})"
        charts.append(_chart(title, title=title, labels=days, series=series, unit=f" {currency}"))
    if not charts:
        charts.append(("Recovered revenue per day", bar_chart(title="Recovered revenue per day", labels=[], series=[])))
    return charts


def dashboard_charts(stats: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(title, svg) of every chart the dashboard shows."""
    return [
        *_funnel_charts(stats),
        *_revenue_over_time(stats),
        _lift_chart(stats),
        *_desk_and_feedback_charts(stats),
        _template_versions_chart(stats),
        _variants_chart(stats),
    ]


def _chart(name: str, *, title: str, labels: list[str], series: list[Series], unit: str = "") -> tuple[str, str]:
    """One dashboard-sized bar chart under its name."""
    return name, bar_chart(title=title, labels=labels, series=series, unit=unit, width=_WIDTH, height=_HEIGHT)


def _funnel_charts(stats: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Where carts are abandoned, and why payments failed."""
    steps = _list(stats, "funnel", "steps")
    reasons = _list(stats, "funnel", "payment_failures_by_reason")
    return [
        _chart(
            "Abandonment by checkout step",
            title="Carts reaching and abandoning each checkout step",
            labels=[str(r["step"]) for r in steps],
            series=[
                Series(name="reached", values=[r.get("reached", 0) for r in steps]),
                Series(name="abandoned here", values=[r.get("abandoned", 0) for r in steps]),
            ],
        ),
        _chart(
            "Payment failures by reason",
            title="Payment failures by reason",
            labels=[str(r["reason"]) for r in reasons],
            series=[Series(name="carts", values=[r.get("failures", 0) for r in reasons])],
        ),
    ]


def _lift_chart(stats: Mapping[str, Any]) -> tuple[str, str]:
    """Treated against holdout recovery rates per flow, with their intervals."""
    flows = _list(stats, "lift", "by_flow")
    return _chart(
        "Lift against the holdout",
        title="Recovery rate, treated vs holdout (%, 95 % interval)",
        labels=[str(r["flow"]) for r in flows],
        series=[_rate_series(flows, "treated", "treated"), _rate_series(flows, "control", "holdout")],
        unit=" %",
    )


def _desk_and_feedback_charts(stats: Mapping[str, Any]) -> list[tuple[str, str]]:
    """How callbacks ended, and what shoppers answered about leaving."""
    outcomes = (stats.get("callbacks") or {}).get("by_outcome") or {}
    feedback = stats.get("feedback") or {}
    return [
        _chart(
            "Callback outcomes",
            title="Callback outcomes",
            labels=list(outcomes),
            series=[Series(name="tasks", values=list(outcomes.values()))],
        ),
        _chart(
            "Why shoppers left",
            title="Feedback answers",
            labels=list(feedback),
            series=[Series(name="journeys", values=list(feedback.values()))],
        ),
    ]


def _template_versions_chart(stats: Mapping[str, Any]) -> tuple[str, str]:
    """Sends, clicks and recovered orders of each template version."""
    versions = stats.get("template_versions") or []
    return _chart(
        "Template versions",
        title="Sends, clicks and recovered orders per template version",
        labels=[f"{r['template']} {r['version'].split(' ', 1)[-1]}" for r in versions],
        series=[
            Series(name="sent", values=[r["sent"] for r in versions]),
            Series(name="clicked", values=[r["clicked"] for r in versions]),
            Series(name="recovered", values=[r["recovered_orders"] for r in versions]),
        ],
    )


def _variants_chart(stats: Mapping[str, Any]) -> tuple[str, str]:
    """Conversion of each A/B variant (per split step) with its 95 % interval."""
    labels: list[str] = []
    values: list[float | None] = []
    intervals: list[tuple[float, float] | None] = []
    for split in stats.get("variants") or []:
        for row in split["variants"]:
            labels.append(f"{split['step']}: {row['variant']}")
            low, high = row["conversion_ci"]
            values.append(row["conversion"] * 100 if row["sent"] else None)
            intervals.append((low * 100, high * 100) if row["sent"] else None)
    return _chart(
        "A/B variants",
        title="Conversion per A/B variant (%, 95 % interval)",
        labels=labels,
        series=[Series(name="conversion", values=values, intervals=intervals)],
        unit=" %",
    )
