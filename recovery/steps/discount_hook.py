"""Registering a journey's discount code in the shop before the message that carries it goes out.

Optional (``offers.register_url``): the service POSTs ``{code, percent, free_shipping, expires_at, journey_id,
store}`` (a free-shipping code has ``percent: 0`` and ``free_shipping: true``)
as JSON, signed with ``X-Recovery-Signature: sha256=<hex HMAC of the body>`` (key: ``security.link_secret``).
The call is repeated for every send attempt, so the shop must treat a known code as success.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from recovery.errors import PermanentError, TransientError
from recovery.steps.discounts import DiscountCode


class DiscountRegistrar:
    """POSTs codes to the shop's endpoint; maps its answers to transient or permanent errors."""

    def __init__(self, *, url: str, secret: str, timeout_s: float = 10.0) -> None:
        self._url = url
        self._secret = secret.encode()
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def register(self, code: DiscountCode, *, store: str) -> None:
        """Make the shop accept ``code``; raise ``TransientError`` (retry later) or ``PermanentError``."""
        body = json.dumps(
            {
                "code": code.code,
                "percent": code.percent,
                "free_shipping": code.free_shipping,
                "expires_at": code.expires_at.isoformat(),
                "journey_id": code.journey_id,
                "store": store,
            }
        ).encode()
        signature = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        try:
            answer = await self._client.post(
                self._url,
                content=body,
                headers={"Content-Type": "application/json", "X-Recovery-Signature": f"sha256={signature}"},
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"discount registration failed: {type(exc).__name__}", code="offer-hook") from exc
        if answer.status_code >= 500 or answer.status_code == 429:
            raise TransientError(f"discount registration answered {answer.status_code}", code="offer-hook")
        if answer.status_code >= 400:
            raise PermanentError(f"discount registration refused ({answer.status_code})", code="offer-hook-refused")

    async def aclose(self) -> None:
        await self._client.aclose()
