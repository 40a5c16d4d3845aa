"""Failed sign-in throttling: a leaky budget of failures per key (client, token prefix); time passed in, no I/O.

Each key starts with ``burst`` failures to spend and earns one back every ``refill``. With none left, the
key must wait: ``retry_after`` says how long, and the caller answers 429 without checking the token at
all, so a guesser gets no faster than one try per ``refill``. Successful sign-ins cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ThrottlePolicy:
    """How many failures a key may make at once, how fast it earns one back, and how many keys are kept."""

    burst: int = 10
    refill_s: float = 6.0
    max_keys: int = 10_000


@dataclass(frozen=True)
class _Budget:
    left: float
    at: float


class FailureThrottle:
    """Budgets of failed attempts per key; memory is bounded by ``policy.max_keys``."""

    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy or ThrottlePolicy()
        self._budgets: dict[str, _Budget] = {}

    def _left(self, key: str, now: float) -> float:
        budget = self._budgets.get(key)
        if budget is None:
            return float(self.policy.burst)
        earned = max(0.0, now - budget.at) / self.policy.refill_s
        return min(float(self.policy.burst), budget.left + earned)

    def retry_after(self, keys: Iterable[str], now: float) -> float:
        """Seconds until every key may try again (0: it may try now)."""
        waits = [(1.0 - left) * self.policy.refill_s for left in (self._left(k, now) for k in keys) if left < 1.0]
        return max(waits, default=0.0)

    def fail(self, keys: Iterable[str], now: float) -> None:
        """Spend one failure from each key's budget."""
        for key in keys:
            left = self._left(key, now) - 1.0
            self._budgets.pop(key, None)  # re-inserted last: the dict's order is the age of each key
            self._budgets[key] = _Budget(left=max(left, 0.0), at=now)
        self._forget_oldest(now)

    def _forget_oldest(self, now: float) -> None:
        """Keep at most ``max_keys``: drop refilled budgets first, then the least recently used."""
        if len(self._budgets) <= self.policy.max_keys:
            return
        for key in [k for k in self._budgets if self._left(k, now) >= self.policy.burst]:
            del self._budgets[key]
        while len(self._budgets) > self.policy.max_keys:
            del self._budgets[next(iter(self._budgets))]
