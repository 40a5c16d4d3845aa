"""Durations as operators write them: ``90s``, ``30m``, ``2h``, ``7d`` (and combinations like ``1h30m``)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse ``30m`` or ``1h30m`` into a timedelta; raise ``ValueError`` with the accepted forms."""
    cleaned = text.strip().replace(" ", "")
    if not cleaned or _PART.sub("", cleaned) != "":
        raise ValueError(f"{text!r} is not a duration: write e.g. 90s, 30m, 2h, 7d")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(cleaned))
    try:
        return timedelta(seconds=seconds)
    except OverflowError as exc:
        raise ValueError(f"{text!r} is too long a duration") from exc


def format_duration(delta: timedelta) -> str:
    """The shortest exact ``7d`` / ``2h`` / ``30m`` / ``90s`` form of a timedelta."""
    seconds = delta.total_seconds()
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _coerce(value: Any) -> Any:
    if isinstance(value, bool):  # YAML reads ``yes`` / ``on`` as true: never a duration
        raise ValueError(f"{str(value).lower()!r} (YAML yes/no/on/off) is not a duration: write e.g. 90s, 30m, 2h, 7d")
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
]
"""A timedelta field that accepts ``30m``-style strings (and plain seconds)."""
