"""Per-channel send rate: the pace the scheduler hands steps out at (token buckets here, pure maths).

Providers cap messages per second (Twilio: about 1/s per long code, more for short codes and toll-free
numbers); above it they answer 429. Pacing the hand-out of steps to senders keeps a sale-day burst under
the cap instead of turning it into a storm of 429s and durable retries.

The cap is the provider account's, whatever the number of scheduler replicas: on PostgreSQL the replicas
share one timeline of send slots (``rate_shared`` keeps it in the database, ``slots`` is its maths), on
SQLite (one process) a token bucket is enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.channels.rate_shared import SharedPace, shared_reserve


@dataclass(frozen=True, kw_only=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``tokens`` as of ``at`` (seconds, monotonic)."""

    rate: float
    burst: float
    tokens: float
    at: float

    @classmethod
    def full(cls, rate: float, now: float, burst: float | None = None) -> TokenBucket:
        """A bucket that allows ``burst`` sends at once (default: one second's worth, at least one)."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        size = max(1.0, rate) if burst is None else max(1.0, burst)
        return cls(rate=rate, burst=size, tokens=size, at=now)

    def refilled(self, now: float) -> TokenBucket:
        """The bucket at ``now`` (time never runs backwards here: an older ``now`` changes nothing)."""
        if now <= self.at:
            return self
        return replace(self, tokens=min(self.burst, self.tokens + (now - self.at) * self.rate), at=now)

    def take(self, now: float) -> tuple[bool, TokenBucket]:
        """Take one token if there is one: (taken, the bucket after)."""
        bucket = self.refilled(now)
        if bucket.tokens >= 1.0:
            return True, replace(bucket, tokens=bucket.tokens - 1.0)
        return False, bucket

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until a token is available (0 when one is)."""
        bucket = self.refilled(now)
        return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / bucket.rate


class ChannelRates:
    """The paces of the rate-limited channels; a channel without a rate is never held back (and costs nothing).

    On a PostgreSQL ``engine`` the rates hold for the whole deployment (slots reserved in the database, see
    ``rate_shared``); otherwise (SQLite, one process, or no engine) for this process, with token buckets.
    ``clock`` is the clock the ``now`` arguments come from (read when a reservation comes back).
    """

    def __init__(
        self,
        rates: dict[str, float],
        now: float,
        *,
        engine: AsyncEngine | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rates = dict(rates)
        reserve = shared_reserve(engine) if engine is not None and rates else None
        self._shared = {name: SharedPace(name, rate, reserve, clock) for name, rate in rates.items()} if reserve else {}
        self._buckets = {} if reserve else {name: TokenBucket.full(rate, now) for name, rate in rates.items()}

    @property
    def shared(self) -> bool:
        """Whether the rates hold across processes (reserved in the database)."""
        return bool(self._shared)

    def limited(self, channel: str) -> bool:
        """Whether ``channel`` has a rate."""
        return channel in self._rates

    def rate(self, channel: str) -> float | None:
        """Messages per second allowed on ``channel`` (None: unlimited)."""
        return self._rates.get(channel)

    def take(self, channel: str, now: float) -> bool:
        """Take a send on ``channel`` now; False when the channel must wait."""
        if (shared := self._shared.get(channel)) is not None:
            return shared.take(now)
        bucket = self._buckets.get(channel)
        if bucket is None:
            return True
        taken, self._buckets[channel] = bucket.take(now)
        return taken

    def wait(self, channel: str, now: float) -> float:
        """Seconds until ``channel`` may send again."""
        if (shared := self._shared.get(channel)) is not None:
            return shared.wait(now)
        bucket = self._buckets.get(channel)
        return 0.0 if bucket is None else bucket.wait(now)
