"""The report's figures for people: rich tables in a terminal, or one self-contained HTML file with charts.

Both take the dict ``recovery.attribution.queries.build_stats`` returns, and tolerate missing sections (an empty
dict renders empty tables). Charts are SVG written into the page, so the file opens offline and loads
nothing.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from recovery.attribution.charts import Series, bar_chart
from recovery.attribution.lift import proportion_ci_wilson
from recovery.attribution.sections import render_sections, variants_html

DASH = "–"
_RECOVERY_HEADERS = ("journeys", "sent", "recovered", "rate", "net revenue", "clicked / not")
_FUNNEL_HEADERS = ("reached", "abandoned here", "of all carts", "of carts reaching it")
_LIFT_HEADERS = ("treated", "holdout", "lift, 95 % CI", "extra revenue", "verdict")
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0; } .meta { color: #666; } .warning { color: #a15c00; }
section { margin: 2.5rem 0; } figure { margin: 0; } svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin-top: 1rem; font-size: .9rem; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
"""


def percent(rate: float | None) -> str:
    """``0.1234`` → ``12.3 %``; no rate → a dash."""
    return DASH if rate is None else f"{rate * 100:.1f} %"


def _amount(value: str | None, stats: Mapping[str, Any]) -> str:
    if value is None:
        return DASH
    currencies = stats.get("currencies") or []
    return f"{value} {currencies[0]}" if len(currencies) == 1 else value


def _compared(row: Mapping[str, Any]) -> bool:
    """Whether both groups have journeys, so a lift and its interval mean something."""
    return bool(row.get("treated", {}).get("journeys")) and bool(row.get("control", {}).get("journeys"))


def _lift_points(row: Mapping[str, Any]) -> str:
    """Absolute lift in percentage points, with the relative lift when there is one."""
    if not _compared(row):
        return DASH
    return f"{row.get('absolute_lift', 0.0) * 100:+.1f} pp"


def _ci(row: Mapping[str, Any]) -> str:
    if not _compared(row):
        return DASH
    return f"[{row.get('ci_low', -1.0) * 100:+.1f}, {row.get('ci_high', 1.0) * 100:+.1f}]"


def _section(stats: Mapping[str, Any], name: str) -> dict[str, Any]:
    found = stats.get(name)
    return found if isinstance(found, dict) else {}


def _rows(section: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    found = section.get(name)
    return found if isinstance(found, list) else []


# Terminal ---------------------------------------------------------------------------------------------


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str | None = None) -> Table:
    # Light borders and no edge padding: seven figures and a name fit in 80 columns without cutting one.
    table = Table(
        title=title, caption=caption, title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD,
        pad_edge=False, collapse_padding=True,
    )  # fmt: skip
    for index, header in enumerate(headers):
        # Figures wrap at spaces (or fold) on a narrow terminal, never end in "…".
        table.add_column(header, justify="left" if index == 0 else "right", overflow="fold")
    for row in rows:
        # Flow and step names come from flows.yaml: printed as they are, never read as rich markup.
        table.add_row(*(Text(cell) for cell in row))
    return table


def _recovery_rows(stats: Mapping[str, Any], rows: list[dict[str, Any]], keys: Sequence[str]) -> list[list[str]]:
    return [
        [
            " / ".join(str(row.get(k, "")) for k in keys),
            str(row.get("journeys", 0)),
            str(row.get("messages_sent", 0)),
            str(row.get("recovered_orders", 0)),
            percent(row.get("recovery_rate")),
            _amount(row.get("recovered_revenue"), stats),
            f"{row.get('clicked_orders', 0)} / {row.get('no_click_orders', 0)}",
        ]
        for row in rows
    ]


def _lift_rows(stats: Mapping[str, Any], rows: list[dict[str, Any]], keys: Sequence[str]) -> list[list[str]]:
    def group(figures: Mapping[str, Any]) -> str:
        return f"{figures.get('recovered', 0)}/{figures.get('journeys', 0)} · {percent(figures.get('rate'))}"

    return [
        [
            " / ".join(str(row.get(k, "")) for k in keys),
            group(row.get("treated", {})),
            group(row.get("control", {})),
            _lift_points(row) if not _compared(row) else f"{_lift_points(row)} {_ci(row)}",
            _amount(row.get("incremental_revenue"), stats),
            str(row.get("verdict", "")),
        ]
        for row in rows
    ]


def _why(rows: list[dict[str, Any]]) -> str | None:
    """The reasons behind "not significant yet", each once."""
    reasons = dict.fromkeys(str(row["reason"]) for row in rows if row.get("reason"))
    return "; ".join(reasons) or None


def _lift_table(stats: Mapping[str, Any], title: str, rows: list[dict[str, Any]], keys: Sequence[str]) -> Table:
    return _table(title, ["", *_LIFT_HEADERS], _lift_rows(stats, rows, keys), _why(rows))


def render_table(stats: Mapping[str, Any], console: Console) -> None:
    """Print the report as rich tables."""
    for warning in stats.get("warnings") or []:
        console.print(Text("! ", style="yellow") + Text(str(warning)))
    for table in (*_funnel_tables(stats), *_recovery_and_lift_tables(stats), *_callback_tables(stats)):
        console.print(table)
    render_sections(stats, console)
    console.print(_totals_table(stats))


def _funnel_tables(stats: Mapping[str, Any]) -> list[Table]:
    """The checkout funnel, and payment failures by reason."""
    funnel = _section(stats, "funnel")
    caption = (
        f"{funnel.get('carts_created', 0)} carts · {funnel.get('abandoned', 0)} abandoned "
        f"({percent(funnel.get('abandonment_rate'))}) · {funnel.get('orders', 0)} orders by "
        f"{funnel.get('buyers', 0)} buyers ({percent(funnel.get('conversion_rate'))}) · revenue "
        f"{_amount(funnel.get('revenue'), stats)}"
    )
    steps = [
        [
            str(row.get("step", "")),
            str(row.get("reached", 0)),
            str(row.get("abandoned", 0)),
            percent(row.get("abandonment_rate")),
            percent(row.get("drop_off_rate")),
        ]
        for row in _rows(funnel, "steps")
    ]
    reasons = [
        [str(row.get("reason", "")), str(row.get("failures", 0)), percent(row.get("rate"))]
        for row in _rows(funnel, "payment_failures_by_reason")
    ]
    failures_caption = (
        f"{funnel.get('payment_failures', 0)} failed of {funnel.get('payment_attempts', 0)} carts that tried "
        f"to pay ({percent(funnel.get('payment_failure_rate'))})"
    )
    return [
        _table("Checkout funnel", ["step", *_FUNNEL_HEADERS], steps, caption),
        _table("Payment failures", ["reason", "carts", "of carts paying"], reasons, failures_caption),
    ]


def _recovery_and_lift_tables(stats: Mapping[str, Any]) -> list[Table]:
    """Attributed recoveries by flow, step and channel; then lift against the holdout."""
    recovery, lift = _section(stats, "recovery"), _section(stats, "lift")
    tables = [
        _table(
            f"Recovery {name.replace('_', ' ')}",
            ["", *_RECOVERY_HEADERS],
            _recovery_rows(stats, _rows(recovery, name), keys),
        )
        for name, keys in (("by_flow", ["flow"]), ("by_step", ["flow", "step"]), ("by_channel", ["channel"]))
    ]
    tables.append(_lift_table(stats, "Lift vs holdout by flow", _rows(lift, "by_flow"), ["flow"]))
    tables.append(_lift_table(stats, "Lift vs holdout by step", _rows(lift, "by_step"), ["flow", "step"]))
    return tables


def _callback_tables(stats: Mapping[str, Any]) -> list[Table]:
    """Callback tasks by status and outcome, and reach and revenue per outcome and agent (none: no section)."""
    callbacks = _section(stats, "callbacks")
    if not callbacks:
        return []
    body = [[f"status {k}", str(v)] for k, v in callbacks.get("by_status", {}).items()]
    body += [[f"outcome {k}", str(v)] for k, v in callbacks.get("by_outcome", {}).items()]
    tables = [_table("Callback tasks", ["", "tasks"], body)]
    rows = [[f"outcome {r['outcome']}", *_callback_cells(r)] for r in callbacks.get("outcomes", [])]
    rows += [[f"agent {r['agent']}", *_callback_cells(r)] for r in callbacks.get("agents", [])]
    if rows:
        headers = ["", "tasks", "reached", "reach rate", "orders", "revenue"]
        tables.append(_table("Callbacks: reach and revenue after a conversation", headers, rows))
    return tables


def _totals_table(stats: Mapping[str, Any]) -> Table:
    """Recovered orders and revenue over the whole period, each order once."""
    totals = _section(stats, "totals")
    headers = [
        "recovered orders",
        "recovered revenue (net)",
        "refunded",
        "clicked & bought",
        "no click",
        "holdout orders",
    ]
    row = [
        str(totals.get("recovered_orders", 0)),
        _amount(totals.get("recovered_revenue"), stats),
        _amount(totals.get("refunded"), stats),
        str(totals.get("clicked_orders", 0)),
        str(totals.get("no_click_orders", 0)),
        str(totals.get("holdout_orders", 0)),
    ]
    return _table("Totals", headers, [row])


# HTML -------------------------------------------------------------------------------------------------


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    note = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{note}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _rates(rows: list[dict[str, Any]], group: str) -> Series:
    """Recovery rates in % of one side of the lift, each with its Wilson 95 % interval."""
    values: list[float | None] = []
    intervals: list[tuple[float, float] | None] = []
    for row in rows:
        figures = row.get(group, {})
        n, recovered = int(figures.get("journeys", 0)), int(figures.get("recovered", 0))
        low, high = proportion_ci_wilson(recovered, n) if n else (0.0, 0.0)
        values.append(recovered / n * 100 if n else None)
        intervals.append((low * 100, high * 100) if n else None)
    return Series(name="treated" if group == "treated" else "holdout", values=values, intervals=intervals)


def _charts(stats: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(heading, chart, table) of each charted section."""
    steps = _rows(_section(stats, "funnel"), "steps")
    channels = _rows(_section(stats, "recovery"), "by_channel")
    flows = _rows(_section(stats, "lift"), "by_flow")
    currencies = stats.get("currencies") or []
    currency = f" {currencies[0]}" if len(currencies) == 1 else ""
    funnel_rows = [
        [
            str(r.get("step")),
            str(r.get("reached", 0)),
            str(r.get("abandoned", 0)),
            percent(r.get("abandonment_rate")),
            percent(r.get("drop_off_rate")),
        ]
        for r in steps
    ]
    return [
        (
            "Checkout funnel",
            bar_chart(
                title="Carts reaching each checkout step",
                labels=[str(r.get("step")) for r in steps],
                series=[
                    Series(name="reached", values=[r.get("reached", 0) for r in steps]),
                    Series(name="abandoned at this step", values=[r.get("abandoned", 0) for r in steps]),
                ],
            ),
            _html_table(["step", *_FUNNEL_HEADERS], funnel_rows),
        ),
        (
            "Recovered revenue by channel",
            bar_chart(
                title="Recovered revenue (net of refunds) by channel",
                labels=[str(r.get("channel")) for r in channels],
                series=[
                    Series(name="clicked and bought", values=[float(r.get("clicked_revenue") or 0) for r in channels]),
                    Series(
                        name="bought after a message, no click",
                        values=[float(r.get("no_click_revenue") or 0) for r in channels],
                    ),
                ],
                unit=currency,
            ),
            _html_table(["channel", *_RECOVERY_HEADERS], _recovery_rows(stats, channels, ["channel"])),
        ),
        (
            "Lift vs holdout by flow",
            bar_chart(
                title="Recovery rate of treated and holdout journeys (%, 95 % interval)",
                labels=[str(r.get("flow")) for r in flows],
                series=[_rates(flows, "treated"), _rates(flows, "control")],
                unit=" %",
            ),
            _html_table(["flow", *_LIFT_HEADERS], _lift_rows(stats, flows, ["flow"]), _why(flows)),
        ),
    ]


def render_html(stats: Mapping[str, Any], path: Path) -> None:
    """Write the report as one HTML file with its charts inlined (works offline)."""
    totals = _section(stats, "totals")
    by_flow = _recovery_rows(stats, _rows(_section(stats, "recovery"), "by_flow"), ["flow"])
    totals_line = (
        f"{totals.get('recovered_orders', 0)} recovered orders · "
        f"{_amount(totals.get('recovered_revenue'), stats)} recovered revenue (net of "
        f"{_amount(totals.get('refunded'), stats)} refunded) · {totals.get('clicked_orders', 0)} clicked and "
        f"bought · {totals.get('no_click_orders', 0)} bought after a message without a click"
    )
    since = stats.get("since")
    meta = f"generated {stats.get('generated_at', DASH)} · " + (f"since {since}" if since else "all time")
    warnings = "".join(f'<p class="warning">{html.escape(str(w))}</p>' for w in stats.get("warnings") or [])
    body = "".join(
        f"<section><h2>{html.escape(title)}</h2><figure>{chart}</figure>{table}</section>"
        for title, chart, table in _charts(stats)
    ) + variants_html(stats)
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>cart-recovery report</title><style>{_CSS}</style></head><body>"
        f'<h1>cart-recovery report</h1><p class="meta">{html.escape(meta)}</p>{warnings}'
        f"<p>{html.escape(totals_line)}</p>{body}"
        f"<section><h2>Recovery by flow</h2>{_html_table(['flow', *_RECOVERY_HEADERS], by_flow)}</section>"
        "</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


def _callback_cells(row: dict[str, Any]) -> list[str]:
    """Tasks, reached, reach rate, orders and revenue of one outcome or agent."""
    rate = row.get("reach_rate")
    shown = "-" if rate is None else f"{rate:.0%}"
    return [str(row["tasks"]), str(row["reached"]), shown, str(row["orders"]), str(row["revenue"])]
