"""Holdout assignment: a stable, salted hash decides which journeys receive no recovery message."""

from __future__ import annotations

import hashlib

_BUCKETS = 2**64


def in_holdout(key: str, *, salt: str, percent: float) -> bool:
    """Whether ``key`` falls in the ``percent`` % holdout for ``salt``; the same inputs always agree."""
    if not 0 <= percent <= 100:
        raise ValueError(f"holdout percent {percent} is outside 0..100")
    digest = hashlib.sha256((salt + key).encode()).digest()
    # The first 64 bits are a uniform position in [0, 100) scaled to [0, 2**64); comparing integers with
    # the scaled threshold avoids float rounding that could put the top position at exactly 100.
    position = int.from_bytes(digest[:8], "big")
    return position < percent / 100 * _BUCKETS
