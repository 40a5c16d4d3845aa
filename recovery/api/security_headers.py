"""Security headers on every answer that does not set its own (the shopper pages keep their stricter ones).

Staff pages load only this site's pinned scripts and styles. Inline styles are allowed because the studio's
preview frame (sandboxed, no scripts) shows the email's own HTML, which inherits this policy.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Anything but a page (JSON, redirects, files): nothing may run, and nobody may frame it.
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"
COMMON = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


class SecurityHeaders:
    """Adds CSP, ``nosniff`` and ``Referrer-Policy`` where the route has not set them."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON.items():
                    headers.setdefault(name, value)
                html = headers.get("content-type", "").startswith("text/html")
                headers.setdefault("Content-Security-Policy", PAGE_POLICY if html else OTHER_POLICY)
            await send(message)

        await self._app(scope, receive, with_headers)
