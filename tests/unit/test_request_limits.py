"""Which body size each route may receive before it is refused with 413."""

from __future__ import annotations

import pytest

from recovery.api.request_limits import DEFAULT_BODY_BYTES, body_limit


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        ("POST", "/login", DEFAULT_BODY_BYTES),
        ("POST", "/api/callbacks/t-1/complete", 64 * 1024),
        ("PUT", "/api/templates/fr/cart_reminder.email.html", 1024 * 1024),
        ("POST", "/api/templates/fr/cart_reminder.email.html/preview", 1024 * 1024),
        ("PUT", "/api/flows/abandoned_cart", 1024 * 1024),
        ("POST", "/studio/save", 1024 * 1024),
        ("POST", "/webhooks/twilio/inbound", 256 * 1024),
        ("GET", "/api/templates/x", DEFAULT_BODY_BYTES),
    ],
)
def test_each_route_gets_the_body_size_it_needs(method: str, path: str, limit: int) -> None:
    """Template and flow sources get 1 MiB, webhooks 256 KiB, every other body 64 KiB."""
    assert body_limit(method, path) == limit
