"""Discount codes: readable, fixed length, unique, expiring."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from recovery.errors import ConfigError
from recovery.steps.discounts import CODE_ALPHABET, CODE_LENGTH, new_discount_code

NOW = datetime(2025, 11, 25, 17, tzinfo=UTC)


def test_code_has_prefix_and_fixed_length_body() -> None:
    """``CART-`` then eight characters, whatever the draw."""
    for _ in range(200):
        code = new_discount_code("j", 10, timedelta(hours=48), NOW).code
        assert re.fullmatch(rf"CART-[{CODE_ALPHABET}]{{{CODE_LENGTH}}}", code)


def test_code_never_contains_confusable_characters() -> None:
    """No 0/O or 1/I: a shopper can type what they read."""
    bodies = "".join(new_discount_code("j", 10, timedelta(hours=1), NOW).code[5:] for _ in range(500))
    assert not set(bodies) & set("0O1I")


def test_codes_are_unique_across_many_draws() -> None:
    """Random codes do not repeat in practice (32^8 possibilities)."""
    codes = {new_discount_code(f"j{i}", 10, timedelta(hours=1), NOW).code for i in range(5000)}
    assert len(codes) == 5000


def test_code_expires_valid_for_after_now() -> None:
    """The expiry is ``now + valid_for``; the code is valid strictly before it."""
    code = new_discount_code("j-7", 15, timedelta(hours=48), NOW, prefix="PROMO")
    assert code.expires_at == NOW + timedelta(hours=48)
    assert code.percent == 15 and code.journey_id == "j-7" and code.code.startswith("PROMO-")
    assert code.is_valid(NOW + timedelta(hours=47, minutes=59))
    assert not code.is_valid(code.expires_at)


@pytest.mark.parametrize(
    ("percent", "valid_for", "prefix"),
    [
        (0, timedelta(hours=1), "CART"),
        (101, timedelta(hours=1), "CART"),
        (10, timedelta(0), "CART"),
        (10, timedelta(hours=-1), "CART"),
        (10, timedelta(hours=1), "cart"),
        (10, timedelta(hours=1), ""),
    ],
)
def test_bad_offer_settings_are_configuration_errors(percent: int, valid_for: timedelta, prefix: str) -> None:
    """Percent outside 1-100, a non-positive validity or a bad prefix are refused."""
    with pytest.raises(ConfigError):
        new_discount_code("j", percent, valid_for, NOW, prefix=prefix)


def test_naive_now_is_refused() -> None:
    """Time is always timezone-aware in this service."""
    with pytest.raises(ValueError, match="timezone"):
        new_discount_code("j", 10, timedelta(hours=1), datetime(2025, 1, 1))
