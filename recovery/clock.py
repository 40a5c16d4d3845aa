"""Injected time: every decision (idle carts, due steps, guards) reads a ``Clock``, so tests and the demo control it.

A provider's ``Retry-After`` date is read against the channel's clock too (the system clock in production).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current UTC time."""

    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class AcceleratedClock:
    """Virtual time that starts at ``start`` and runs ``speed`` times faster than the wall clock.

    The demo uses it to live a shop's day in a minute through the real scheduler.
    """

    def __init__(self, *, speed: float, start: datetime | None = None) -> None:
        self._speed = speed
        self._start = start or datetime.now(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        elapsed = time.monotonic() - self._origin
        return self._start + timedelta(seconds=elapsed * self._speed)


class ManualClock:
    """A clock that moves only when told to: for pure and unit tests."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta
