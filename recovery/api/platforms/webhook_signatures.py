"""Webhook signatures of Shopify, WooCommerce (base64 HMAC-SHA256) and Stripe (``t=``, ``v1=``), compared in
constant time over the raw body. Pure: time is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from enum import StrEnum


class Verdict(StrEnum):
    """What a signature check found."""

    VALID = "valid"
    BAD_SIGNATURE = "bad_signature"  # 401
    STALE = "stale"  # Stripe: signed, but the timestamp is outside the tolerance: 400


def base64_hmac_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Shopify's ``X-Shopify-Hmac-Sha256`` and WooCommerce's ``X-WC-Webhook-Signature``."""
    if not header:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, header.strip().encode("ascii", "replace"))


def stripe_verdict(secret: str, body: bytes, header: str | None, *, now: datetime, tolerance: timedelta) -> Verdict:
    """Stripe's ``Stripe-Signature``: any one ``v1`` valid (secret rotation) and ``t`` within the tolerance."""
    timestamp, signatures = _stripe_parts(header or "")
    if timestamp is None or not signatures:
        return Verdict.BAD_SIGNATURE
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
    # Compare against every signature, so the time taken tells nothing about which one matched.
    matched = False
    for signature in signatures:
        matched |= hmac.compare_digest(expected, signature.encode("ascii", "replace"))
    if not matched:
        return Verdict.BAD_SIGNATURE
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        return Verdict.STALE
    return Verdict.VALID


def stripe_signature(secret: str, body: bytes, timestamp: int) -> str:
    """A ``Stripe-Signature`` header value, as Stripe computes it (tests, docs)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def base64_hmac(secret: str, body: bytes) -> str:
    """A Shopify / WooCommerce signature header value (tests, docs)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _stripe_parts(header: str) -> tuple[int | None, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    return timestamp, signatures
