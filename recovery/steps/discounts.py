"""Discount codes for offer steps: random, readable aloud, fixed length, with an expiry; pure."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from recovery.errors import ConfigError

# No 0/O or 1/I: a shopper copying a code from an SMS must not have to guess.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
_PREFIX = re.compile(r"[A-Z0-9]{1,12}")


@dataclass(frozen=True, kw_only=True)
class DiscountCode:
    """A one-journey code: ``CART-7KQ2MZ4H`` for ``percent`` off (or free shipping) until ``expires_at``."""

    code: str
    percent: int  # 0 for a free-shipping code
    expires_at: datetime
    journey_id: str
    free_shipping: bool = False

    def is_valid(self, now: datetime) -> bool:
        """True until the expiry instant, false from it on."""
        return now < self.expires_at


def new_discount_code(
    journey_id: str,
    percent: int,
    valid_for: timedelta,
    now: datetime,
    prefix: str = "CART",
    *,
    free_shipping: bool = False,
) -> DiscountCode:
    """Draw a fresh code for ``journey_id`` worth ``percent`` off (or free shipping), valid ``valid_for``."""
    if free_shipping:
        percent = 0  # the shop applies free shipping instead of a percentage
    elif not 1 <= percent <= 100:
        raise ConfigError(f"offer.percent: {percent} is not between 1 and 100")
    if valid_for <= timedelta(0):
        raise ConfigError(f"offer.valid_for: {valid_for} must be positive")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(f"offer prefix {prefix!r}: use 1-12 capital letters or digits")
    body = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return DiscountCode(
        code=f"{prefix}-{body}",
        percent=percent,
        expires_at=now + valid_for,
        journey_id=journey_id,
        free_shipping=free_shipping,
    )
