"""Holdout assignment is a stable, salted, uniform hash."""

from __future__ import annotations

import pytest

from recovery.journeys.holdout import in_holdout

SALT = "exp-2025"
KEYS = [f"cart-{i}" for i in range(20_000)]


def test_same_key_and_salt_always_get_the_same_assignment() -> None:
    """Calling twice, in any order, gives the same answer for every key."""
    first = [in_holdout(key, salt=SALT, percent=10) for key in KEYS]
    second = [in_holdout(key, salt=SALT, percent=10) for key in reversed(KEYS)]
    assert first == second[::-1]


# Pinned so that a refactor cannot silently reshuffle a running experiment:
# int(sha256(b"exp-2025cart-4")[:8]) / 2**64 * 100 = 15.549...; for cart-1 it is 74.074...
@pytest.mark.parametrize(
    ("key", "percent", "expected"),
    [
        pytest.param("cart-4", 15, False, id="cart-4 at 15.55 is outside 15 %"),
        pytest.param("cart-4", 16, True, id="cart-4 at 15.55 is inside 16 %"),
        pytest.param("cart-1", 74, False, id="cart-1 at 74.07 is outside 74 %"),
        pytest.param("cart-1", 75, True, id="cart-1 at 74.07 is inside 75 %"),
    ],
)
def test_assignment_is_pinned_to_the_sha256_position(key: str, percent: float, expected: bool) -> None:
    """A key is held out exactly when its hash position in [0, 100) is below the percent."""
    assert in_holdout(key, salt=SALT, percent=percent) is expected


def test_ten_percent_holdout_takes_ten_percent_of_keys() -> None:
    """Over 20 000 keys a 10 % holdout holds out between 9 % and 11 % of them."""
    share = sum(in_holdout(key, salt=SALT, percent=10) for key in KEYS) / len(KEYS)
    assert 0.09 <= share <= 0.11


def test_another_salt_reshuffles_the_holdout() -> None:
    """A new salt picks a different, mostly disjoint 10 % of keys."""
    held_a = {key for key in KEYS if in_holdout(key, salt=SALT, percent=10)}
    held_b = {key for key in KEYS if in_holdout(key, salt="exp-2026", percent=10)}
    assert held_a != held_b
    # Independent 10 % draws overlap on about 10 % of each other; identical ones would overlap fully.
    assert len(held_a & held_b) < len(held_a) / 2


def test_raising_the_percent_only_adds_keys() -> None:
    """Everyone in a 5 % holdout stays in it when the holdout grows to 10 %."""
    five = {key for key in KEYS if in_holdout(key, salt=SALT, percent=5)}
    ten = {key for key in KEYS if in_holdout(key, salt=SALT, percent=10)}
    assert five < ten


@pytest.mark.parametrize(("percent", "expected"), [(0, False), (100, True)])
def test_zero_and_hundred_percent_hold_out_nobody_and_everybody(percent: float, expected: bool) -> None:
    """0 % never holds anyone out and 100 % always does."""
    assert all(in_holdout(key, salt=SALT, percent=percent) is expected for key in KEYS[:2000])


@pytest.mark.parametrize("percent", [-0.1, 100.1])
def test_percent_outside_0_to_100_is_refused(percent: float) -> None:
    """A percent outside 0..100 is a configuration mistake, not a silent clamp."""
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        in_holdout("cart-1", salt=SALT, percent=percent)
