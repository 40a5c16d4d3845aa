"""Grouped bar charts for the HTML report, drawn by matplotlib as inline SVG (nothing fetched at view time).

Values are assumed to be zero or more (counts, rates, revenue), which is all the report draws.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recovery.errors import require_extra

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PALETTE = ("#3867d6", "#f7b731", "#20bf6b", "#eb3b5a", "#8854d0")


@dataclass(frozen=True, kw_only=True)
class Series:
    """One colour of bars: a value (or ``None``) per label, and optionally an interval around each."""

    name: str
    values: Sequence[float | None]
    intervals: Sequence[tuple[float, float] | None] = ()


def bar_chart(
    *, title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "", width: int = 900, height: int = 340
) -> str:
    """An ``<svg>`` element drawing ``series`` side by side for each label (error bars for intervals)."""
    # matplotlib is the [report] extra: imported here so the service and /api/stats never load it
    require_extra("report", "the HTML report")
    import matplotlib
    from matplotlib.figure import Figure

    # A bare Figure needs no GUI backend and holds no global state (unlike pyplot).
    # svg.fonttype none: text stays text (searchable, readable by screen readers); a fixed hash salt keeps
    # element ids stable, so the same figures give the same file.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "cart-recovery"}):
        figure = Figure(figsize=(width / 100, height / 100), dpi=100)
        axes = figure.subplots()
        # Wrapped to the chart's width: a long title is never cut at the edge.
        axes.set_title("\n".join(textwrap.wrap(title, max(30, width // 9))), loc="left", fontsize=12, fontweight="bold")
        values = [v for s in series for v in s.values if v is not None]
        if not labels or not values:
            axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)
            axes.set_axis_off()
        else:
            _draw(axes, labels, series, unit)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog and doctype: the SVG is inlined in HTML


def _draw(axes: Axes, labels: Sequence[str], series: Sequence[Series], unit: str) -> None:
    count = max(len(series), 1)
    width = 0.8 / count
    for index, one in enumerate(series):
        positions = [label + (index - (count - 1) / 2) * width for label in range(len(labels))]
        heights = [value or 0.0 for value in one.values]
        errors = None
        if one.intervals:
            low = [max(0.0, h - (i[0] if i else h)) for h, i in zip(heights, one.intervals, strict=False)]
            high = [max(0.0, (i[1] if i else h) - h) for h, i in zip(heights, one.intervals, strict=False)]
            errors = [low, high]
        axes.bar(positions, heights, width, label=one.name, color=PALETTE[index % len(PALETTE)], yerr=errors, capsize=4)
    # Long labels wrap on two lines; many of them also tilt, so neighbours never print over each other.
    wrapped = ["\n".join(textwrap.wrap(label, 16, max_lines=2, placeholder="…")) or label for label in labels]
    if len(labels) > 4:
        axes.set_xticks(range(len(labels)), wrapped, rotation=30, ha="right", rotation_mode="anchor")
    else:
        axes.set_xticks(range(len(labels)), wrapped)
    axes.set_ylabel(unit.strip())
    axes.set_ylim(bottom=0)
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(frameon=False)
