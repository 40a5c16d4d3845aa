"""Rendering the report: rich tables for a terminal, one offline HTML page with its own SVG charts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from recovery.attribution.charts import Series, bar_chart
from recovery.attribution.render import percent, render_html, render_table


def _recovery_row(**key: str) -> dict[str, Any]:
    return key | {
        "journeys": 4,
        "messages_sent": 5,
        "recovered_orders": 2,
        "recovery_rate": 0.5,
        "recovered_revenue": "120.00",
        "gross_revenue": "150.00",
        "refunded": "30.00",
        "clicked_orders": 1,
        "clicked_revenue": "70.00",
        "no_click_orders": 1,
        "no_click_revenue": "50.00",
    }


def _lift_row(**key: str) -> dict[str, Any]:
    return key | {
        "treated": {"journeys": 4, "recovered": 2, "rate": 0.5, "revenue": "120.00"},
        "control": {"journeys": 2, "recovered": 1, "rate": 0.5, "revenue": "80.00"},
        "absolute_lift": 0.0,
        "relative_lift": 0.0,
        "ci_low": -0.52,
        "ci_high": 0.48,
        "significant": False,
        "incremental_revenue": "-40.00",
        "verdict": "not significant yet",
        "reason": "fewer than 30 journeys in a group",
    }


STATS: dict[str, Any] = {
    "generated_at": "2026-11-20T12:00:00+00:00",
    "since": None,
    "currencies": ["EUR"],
    "warnings": [],
    "funnel": {
        "carts_created": 8,
        "steps": [
            {"step": "cart", "reached": 8, "abandoned": 2, "abandonment_rate": 0.25, "drop_off_rate": 0.25},
            {"step": "payment", "reached": 3, "abandoned": 1, "abandonment_rate": 0.125, "drop_off_rate": 1 / 3},
        ],
        "abandoned": 6,
        "abandonment_rate": 0.75,
        "payment_attempts": 5,
        "payment_failures": 2,
        "payment_failure_rate": 0.4,
        "payment_failures_by_reason": [{"reason": "card_declined", "failures": 2, "rate": 0.4}],
        "orders": 4,
        "buyers": 3,
        "conversion_rate": 0.5,
        "revenue": "270.00",
        "refunded": "30.00",
        "average_order_value": "67.50",
    },
    "recovery": {
        "by_flow": [_recovery_row(flow="abandoned_cart")],
        "by_step": [_recovery_row(flow="abandoned_cart", step="reminder")],
        "by_channel": [_recovery_row(channel="email"), _recovery_row(channel="sms")],
    },
    "lift": {
        "by_flow": [_lift_row(flow="abandoned_cart"), _lift_row(flow="<b>vip</b>"), _lift_row(flow="[bold]x[/i]")],
        "by_step": [_lift_row(flow="abandoned_cart", step="reminder")],
    },
    "callbacks": {"by_status": {"open": 1}, "by_outcome": {"reached": 1}},
    "totals": _recovery_row() | {"holdout_journeys": 2, "holdout_orders": 1},
}


def _printed(stats: dict[str, Any]) -> str:
    out = io.StringIO()
    render_table(stats, Console(file=out, width=200, color_system=None))
    return out.getvalue()


@pytest.mark.parametrize(("rate", "text"), [(None, "–"), (0.0, "0.0 %"), (0.1234, "12.3 %"), (1.0, "100.0 %")])
def test_rates_print_as_percentages_and_missing_ones_as_a_dash(rate: float | None, text: str) -> None:
    """A rate over nothing is a dash, never a reassuring 0 %."""
    assert percent(rate) == text


def test_render_table_does_not_crash_on_empty_stats() -> None:
    """An empty dict still prints the table headings."""
    printed = _printed({})
    assert "Checkout funnel" in printed and "Totals" in printed


def test_render_table_prints_the_figures() -> None:
    """Funnel, recovery, lift and totals appear with their amounts in the report's currency."""
    printed = _printed(STATS)
    assert "120.00 EUR" in printed and "not significant yet" in printed
    assert "abandoned_cart" in printed and "card_declined" in printed and "status open" in printed
    assert "[bold]x[/i]" in printed  # a flow name is text, not rich markup


def test_render_html_writes_an_offline_page_with_charts_and_numbers(tmp_path: Path) -> None:
    """Inline SVG charts, the figures as tables, no script and nothing fetched from elsewhere."""
    page = tmp_path / "out" / "report.html"
    render_html(STATS, page)
    text = page.read_text(encoding="utf-8")
    assert text.count("<svg") == 3
    assert "Carts reaching each checkout step" in text and "Recovered revenue" in text
    assert "120.00 EUR" in text and "-40.00 EUR" in text and "not significant yet" in text
    assert "<script" not in text and "kozea.github.io" not in text and "googleapis" not in text
    assert "<b>vip</b>" not in text and "&lt;b&gt;vip&lt;/b&gt;" in text


def test_render_html_of_empty_stats_still_writes_a_page(tmp_path: Path) -> None:
    """Charts say there is no data yet instead of failing."""
    page = tmp_path / "report.html"
    render_html({}, page)
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "no data yet" in text


def test_a_chart_names_its_title_labels_and_series_as_text() -> None:
    """The SVG keeps its words as text (searchable), one bar group per label."""
    svg = bar_chart(
        title="Revenue by channel",
        labels=["email", "sms"],
        series=[Series(name="clicked", values=[50, 100]), Series(name="no click", values=[20, None])],
        unit=" EUR",
    )
    assert svg.startswith("<svg")
    for word in ("Revenue by channel", "email", "sms", "clicked", "no click", "EUR"):
        assert word in svg


def test_intervals_are_drawn_as_error_bars_and_names_are_escaped() -> None:
    """An interval adds an error bar; a label cannot inject markup."""
    plain = bar_chart(title="t", labels=["<i>"], series=[Series(name="x&y", values=[40.0])])
    whiskered = bar_chart(
        title="t", labels=["<i>"], series=[Series(name="x&y", values=[40.0], intervals=[(30.0, 55.5)])]
    )
    assert whiskered.count("<path") > plain.count("<path")
    assert "<i>" not in plain and "&lt;i&gt;" in plain and "x&amp;y" in plain


def test_a_chart_without_data_says_so() -> None:
    """No label or no value: a titled chart saying there is no data yet."""
    assert "no data yet" in bar_chart(title="t", labels=[], series=[])
    assert "no data yet" in bar_chart(title="t", labels=["a"], series=[Series(name="s", values=[None])])


def test_terminal_report_fits_80_columns_without_cutting_a_figure() -> None:
    """At 80 columns no line is wider and no figure ends in an ellipsis."""
    out = io.StringIO()
    stats = {
        **STATS,
        "money": {"EUR": {"orders": 3, "revenue": "1234567.89", "refunded": "0.00", "recovered_orders": 2,
                          "recovered_revenue": "23456.78"}},
    }  # fmt: skip
    render_table(stats, Console(file=out, width=80, color_system=None))
    printed = out.getvalue()
    assert "…" not in printed
    assert max(len(line) for line in printed.splitlines()) <= 80
    assert "1234567.89 EUR" in printed.replace("\n", " ") or "1234567.89" in printed
