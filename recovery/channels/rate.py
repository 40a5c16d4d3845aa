"""Per-channel send rate: a token bucket, pure maths with the time passed in.

Providers cap messages per second (Twilio: about 1/s per long code, more for short codes and toll-free
numbers); above it they answer 429. Pacing the hand-out of steps to senders keeps a sale-day burst under
the cap instead of turning it into a storm of 429s and durable retries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


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
    """The buckets of the rate-limited channels; a channel without a rate is never held back."""

    def __init__(self, rates: dict[str, float], now: float) -> None:
        self._buckets = {name: TokenBucket.full(rate, now) for name, rate in rates.items()}

    def limited(self, channel: str) -> bool:
        """Whether ``channel`` has a rate."""
        return channel in self._buckets

    def rate(self, channel: str) -> float | None:
        """Messages per second allowed on ``channel`` (None: unlimited)."""
        bucket = self._buckets.get(channel)
        return None if bucket is None else bucket.rate

    def take(self, channel: str, now: float) -> bool:
        """Take a token for one send on ``channel``; False when the channel must wait."""
        bucket = self._buckets.get(channel)
        if bucket is None:
            return True
        taken, self._buckets[channel] = bucket.take(now)
        return taken

    def wait(self, channel: str, now: float) -> float:
        """Seconds until ``channel`` may send again."""
        bucket = self._buckets.get(channel)
        return 0.0 if bucket is None else bucket.wait(now)
