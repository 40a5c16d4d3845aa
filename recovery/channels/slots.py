"""Send slots on a timeline shared by every replica: pure maths with the time passed in (no I/O, no clock).

A channel's slots are ``1 / rate`` apart on one timeline for the whole deployment (``rate_shared`` keeps it
in the database); each replica reserves a block of them and sends at most one per slot, so the replicas
together never send faster than the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

# Slots reserved at once hold at most this long a stretch of the timeline: a replica reserving more than it
# sends wastes the rest (the others wait behind it), one reserving less queries the database more often.
BLOCK_S = 0.5
MAX_BLOCK = 50
# A slot not used within this long after its time is dropped (use it or lose it): a replica that fell behind
# must not send its missed slots all at once, on top of the other replicas' current ones.
MIN_GRACE_S = 0.1


def block_cap(rate: float) -> int:
    """The most slots one reservation asks for at ``rate`` per second (at least 1)."""
    return max(1, min(MAX_BLOCK, round(rate * BLOCK_S)))


def next_block(previous: int, dropped: int, cap: int) -> int:
    """Slots to reserve next: double while the last block was all used, back to 1 once slots went unused
    (a replica with little to send then takes little of the shared timeline)."""
    return 1 if dropped else min(cap, max(1, previous * 2))


def grace(interval: float) -> float:
    """How long after its time a slot may still be used."""
    return max(interval, MIN_GRACE_S)


@dataclass(frozen=True, kw_only=True)
class Slots:
    """Send slots this process reserved: ``left`` of them, ``interval`` apart, the next at ``first`` (local
    seconds, monotonic); ``dropped`` counts those that passed unused."""

    first: float = 0.0
    interval: float = 1.0
    left: int = 0
    dropped: int = 0

    def fresh(self, now: float, late: float) -> Slots:
        """Without the slots more than ``late`` seconds past."""
        if not self.left or now <= self.first + late:
            return self
        stale = min(self.left, math.ceil((now - self.first - late) / self.interval))
        return replace(
            self, first=self.first + stale * self.interval, left=self.left - stale, dropped=self.dropped + stale
        )

    def take(self, now: float, late: float) -> tuple[bool, Slots]:
        """Use the next slot if its time has come: (taken, the slots after)."""
        slots = self.fresh(now, late)
        if slots.left and slots.first <= now:
            return True, replace(slots, first=slots.first + slots.interval, left=slots.left - 1)
        return False, slots

    def wait(self, now: float, late: float) -> float | None:
        """Seconds until the next slot; None when none is left (reserve more)."""
        slots = self.fresh(now, late)
        return max(0.0, slots.first - now) if slots.left else None
