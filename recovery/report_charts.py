"""Grouped bar charts as inline SVG for the HTML report: no script, no web font, nothing fetched.

Hovering a bar shows its exact figure through SVG's own ``<title>`` tooltip. Values are assumed to be
zero or more (counts, rates, revenue), which is all the report draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#3867d6", "#f7b731", "#20bf6b", "#eb3b5a", "#8854d0")
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 36, 64
_LABEL_CHARS = 22


@dataclass(frozen=True, kw_only=True)
class Series:
    """One colour of bars: a value (or ``None``) per label, and optionally an interval around each."""

    name: str
    values: Sequence[float | None]
    intervals: Sequence[tuple[float, float] | None] = ()


def nice_step(top: float, ticks: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` ticks up to ``top``."""
    if top <= 0:
        return 1.0
    raw = top / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def bar_chart(
    *, title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "", width: int = 900, height: int = 340
) -> str:
    """An ``<svg>`` element drawing ``series`` side by side for each label."""
    text = 'font-family="system-ui, sans-serif" fill="#333"'
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{_LEFT}" y="22" font-size="15" font-weight="600" {text}>{escape(title)}</text>',
    ]
    values = [v for s in series for v in s.values if v is not None]
    highs = [i[1] for s in series for i in s.intervals if i is not None]
    if not labels or not values:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {text}>no data yet</text></svg>')
        return "".join(parts)
    step = nice_step(max([*values, *highs]))
    top = step * max(1, math.ceil(max([*values, *highs]) / step))
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    base = _TOP + plot_h

    def y(value: float) -> float:
        return base - max(0.0, value) / top * plot_h

    ticks = round(top / step)
    for index in range(ticks + 1):
        tick = index * step
        parts.append(
            f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e3e3e3"/>'
            f'<text x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11" {text}>'
            f"{escape(_figure(tick))}</text>"
        )
    group = plot_w / len(labels)
    bar = group * 0.8 / max(1, len(series))
    for i, label in enumerate(labels):
        left = _LEFT + i * group + group * 0.1
        for j, one in enumerate(series):
            value = one.values[i] if i < len(one.values) else None
            if value is None:
                continue
            x = left + j * bar
            tip = f"{one.name} — {label}: {_figure(value)}{unit}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{bar * 0.92:.1f}" height="{base - y(value):.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(tip)}</title></rect>'
            )
            interval = one.intervals[i] if i < len(one.intervals) else None
            if interval is not None:
                parts.append(_whisker(x + bar * 0.46, y(interval[0]), y(interval[1]), bar * 0.3))
        short = label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"
        parts.append(
            f'<text x="{left + group * 0.4:.1f}" y="{base + 16}" text-anchor="middle" font-size="12" {text}>'
            f"<title>{escape(label)}</title>{escape(short)}</text>"
        )
    parts.append(f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{base}" y2="{base}" stroke="#999"/>')
    x = float(_LEFT)
    for j, one in enumerate(series):
        parts.append(
            f'<rect x="{x:.1f}" y="{height - 22}" width="12" height="12" fill="{PALETTE[j % len(PALETTE)]}"/>'
            f'<text x="{x + 17:.1f}" y="{height - 12}" font-size="12" {text}>{escape(one.name)}</text>'
        )
        x += 40 + 7 * len(one.name)
    parts.append("</svg>")
    return "".join(parts)


def _whisker(x: float, low: float, high: float, cap: float) -> str:
    """A vertical interval with caps, as error bars are drawn."""
    line = 'stroke="#222" stroke-width="1.5"'
    return (
        f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{low:.1f}" y2="{high:.1f}" {line}/>'
        f'<line x1="{x - cap / 2:.1f}" x2="{x + cap / 2:.1f}" y1="{low:.1f}" y2="{low:.1f}" {line}/>'
        f'<line x1="{x - cap / 2:.1f}" x2="{x + cap / 2:.1f}" y1="{high:.1f}" y2="{high:.1f}" {line}/>'
    )


def _figure(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")
