"""Terminal tables for the report's newer sections: money per currency, template versions, feedback."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

DASH = "–"


def _table(title: str, headers: list[str]) -> Table:
    table = Table(title=title, title_justify="left", pad_edge=False, collapse_padding=True)
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index == 0 else "right", overflow="fold")
    return table


def _money(value: object, currency: str) -> str:
    return DASH if value is None else f"{value} {currency}"


def render_sections(stats: Mapping[str, Any], console: Console) -> None:
    """Print money per currency, template versions and feedback answers, when there are any."""
    by_currency = stats.get("money") or {}
    if by_currency:
        table = _table(
            "Money per currency", ["currency", "orders", "revenue", "refunded", "recovered", "net recovered"]
        )
        for currency, row in by_currency.items():
            table.add_row(
                Text(currency),
                str(row.get("orders", 0)),
                _money(row.get("revenue"), currency),
                _money(row.get("refunded"), currency),
                str(row.get("recovered_orders", 0)),
                _money(row.get("recovered_revenue"), currency),
            )
        console.print(table)
    versions = stats.get("template_versions") or []
    if versions:
        table = _table("Template versions", ["template", "sent", "clicked", "recovered", "net recovered"])
        for row in versions:
            revenue = row.get("recovered_revenue") or {}
            table.add_row(
                Text(f"{row.get('template')} {row.get('channel')}\n{row.get('version')}"),
                str(row.get("sent", 0)),
                str(row.get("clicked", 0)),
                str(row.get("recovered_orders", 0)),
                "\n".join(f"{amount} {currency}" for currency, amount in revenue.items()) or DASH,
            )
        console.print(table)
    render_variants(stats, console)
    feedback = stats.get("feedback") or {}
    if feedback:
        table = _table("Why shoppers left (feedback answers)", ["answer", "journeys"])
        for answer, count in sorted(feedback.items(), key=lambda item: -item[1]):
            table.add_row(Text(answer), str(count))
        console.print(table)


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f} %"


def render_variants(stats: Mapping[str, Any], console: Console) -> None:
    """Per split step and variant: sent, clicked, orders, revenue, conversion with its 95 % interval, then
    the difference between variants in words (saying when it is not yet significant)."""
    for split in stats.get("variants") or []:
        table = _table(
            f"A/B split {split['flow']} / {split['step']}",
            ["variant", "sent", "clicked", "orders", "net recovered", "conversion", "95 % interval"],
        )
        for row in split["variants"]:
            low, high = row["conversion_ci"]
            revenue = row.get("recovered_revenue") or {}
            table.add_row(
                Text(str(row["variant"])),
                str(row["sent"]),
                str(row["clicked"]),
                str(row["recovered_orders"]),
                "\n".join(f"{amount} {currency}" for currency, amount in revenue.items()) or DASH,
                _pct(row["conversion"]),
                f"{_pct(low)} – {_pct(high)}",
            )
        table.caption = "\n".join(difference["verdict"] for difference in split["differences"]) or None
        table.caption_justify = "left"
        console.print(table)


def variants_html(stats: Mapping[str, Any]) -> str:
    """The HTML report's A/B sections: per split step, each variant's conversion with its interval drawn,
    the table of sent, clicked, orders and revenue, and the verdict in words."""
    from recovery.attribution.charts import Series, bar_chart  # matplotlib: the report extra

    parts = []
    for split in stats.get("variants") or []:
        rows = split["variants"]
        chart = bar_chart(
            title=f"Conversion per variant of {split['step']} (%, 95 % interval)",
            labels=[str(row["variant"]) for row in rows],
            series=[
                Series(
                    name="conversion",
                    values=[row["conversion"] * 100 for row in rows],
                    intervals=[(row["conversion_ci"][0] * 100, row["conversion_ci"][1] * 100) for row in rows],
                )
            ],
            unit=" %",
        )
        cells = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(value))}</td>"
                for value in (
                    row["variant"],
                    row["sent"],
                    row["clicked"],
                    row["recovered_orders"],
                    " ".join(f"{a} {c}" for c, a in (row.get("recovered_revenue") or {}).items()) or DASH,
                    f"{_pct(row['conversion'])} [{_pct(row['conversion_ci'][0])}, {_pct(row['conversion_ci'][1])}]",
                )
            )
            + "</tr>"
            for row in rows
        )
        head = "".join(f"<th>{h}</th>" for h in ("variant", "sent", "clicked", "orders", "net recovered", "conversion"))
        verdicts = "".join(f"<p>{html.escape(d['verdict'])}</p>" for d in split["differences"])
        title = html.escape(f"A/B split {split['flow']} / {split['step']}")
        parts.append(
            f"<section><h2>{title}</h2><figure>{chart}</figure><table><tr>{head}</tr>{cells}</table>{verdicts}</section>"
        )
    return "".join(parts)
