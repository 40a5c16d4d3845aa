"""The failed sign-in throttle: a budget of failures per key, earned back with time (no clock, no I/O)."""

from __future__ import annotations

import pytest

from recovery.api.throttle import FailureThrottle, ThrottlePolicy

POLICY = ThrottlePolicy(burst=3, refill_s=10.0, max_keys=4)


@pytest.mark.parametrize(
    ("failures_at", "asked_at", "wait"),
    [
        ([], 0.0, 0.0),  # nothing failed yet
        ([0.0, 0.0], 0.0, 0.0),  # within the burst
        ([0.0, 0.0, 0.0], 0.0, 10.0),  # burst spent: one try back after refill_s
        ([0.0, 0.0, 0.0], 4.0, 6.0),  # part of the wait already passed
        ([0.0, 0.0, 0.0], 10.0, 0.0),  # one failure earned back
        ([0.0, 1.0, 2.0, 30.0], 30.0, 0.0),  # slow failures never lock out
    ],
)
def test_retry_after_follows_the_failures_of_a_key(failures_at: list[float], asked_at: float, wait: float) -> None:
    """A key may fail ``burst`` times at once, then once per ``refill_s``."""
    throttle = FailureThrottle(POLICY)
    for at in failures_at:
        throttle.fail(["ip:1"], at)
    assert throttle.retry_after(["ip:1"], asked_at) == pytest.approx(wait)


def test_the_longest_wait_of_any_key_applies() -> None:
    """A guesser who changes client address is still held by the token prefix it keeps guessing."""
    throttle = FailureThrottle(POLICY)
    for address in ("ip:1", "ip:2", "ip:3"):
        throttle.fail([address, "prefix:abcd"], 0.0)
    assert throttle.retry_after(["ip:4", "prefix:abcd"], 0.0) == pytest.approx(10.0)
    assert throttle.retry_after(["ip:4", "prefix:wxyz"], 0.0) == 0.0


def test_memory_is_bounded_by_max_keys() -> None:
    """A flood of distinct clients keeps at most ``max_keys`` budgets, forgetting the oldest."""
    throttle = FailureThrottle(POLICY)
    for n in range(100):
        throttle.fail([f"ip:{n}"], float(n))
    assert len(throttle._budgets) <= POLICY.max_keys
    for _ in range(3):
        throttle.fail(["ip:99"], 100.0)
    assert throttle.retry_after(["ip:99"], 100.0) > 0
