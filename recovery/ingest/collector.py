"""The cyclic garbage collector during ingest: paused while batches are in flight, caught up on a schedule.

A batch makes tens of thousands of objects (events, rows, states) that live until its write is committed.
With batch N+1 decoded while batch N is written, the collector found N+1's objects alive at every turn,
rescanned and promoted them: about 15 µs of CPU per event in the service process. Those objects hold no
reference cycles and are freed by reference counting, so the collector can wait. It must not wait forever
under a load that never pauses (some cyclic garbage does come: exceptions, tasks), so a busy spell collects
the young generations every ``young_every_s`` seconds and everything every ``full_every_s`` seconds.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

__all__ = ["LoadCollector"]


class LoadCollector:
    """``busy`` when the first batch is in flight, ``batch_done`` after each commit, ``idle`` when none is left."""

    def __init__(
        self,
        *,
        young_every_s: float = 1.0,
        full_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._young_every_s = young_every_s
        self._full_every_s = full_every_s
        self._clock = clock
        self._paused = False  # whether this pause is ours to end (it was on when the spell began)
        self._young_at = self._full_at = 0.0

    def busy(self) -> None:
        """A busy spell begins: pause the collector if it runs."""
        self._paused = gc.isenabled()
        if self._paused:
            gc.disable()
            now = self._clock()
            self._young_at, self._full_at = now + self._young_every_s, now + self._full_every_s

    def batch_done(self) -> None:
        """A batch is committed: collect what is due in a long busy spell."""
        if not self._paused:
            return
        now = self._clock()
        if now >= self._full_at:
            gc.collect()
            self._young_at, self._full_at = now + self._young_every_s, now + self._full_every_s
        elif now >= self._young_at:
            gc.collect(1)
            self._young_at = now + self._young_every_s

    def idle(self) -> None:
        """Nothing in flight: the collector runs again (and catches up at once on what accumulated)."""
        if self._paused:
            gc.enable()
            self._paused = False
