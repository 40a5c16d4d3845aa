"""Early request limits: a body larger than its route needs is refused with 413 before it is read (and
before any authentication), and a client that takes longer than ``READ_TIMEOUT_S`` to send its body is cut.

The ASGI server cuts slow request heads (``recovery.api.server``); this middleware sees the declared
``Content-Length`` before the route runs, and counts streamed (chunked) bytes as the route reads them.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE, TOO_SLOW = 413, 408  # numbers: Starlette renamed the 413 constant
KIB = 1024
DEFAULT_BODY_BYTES = 64 * KIB  # every API body is a small JSON object or form
READ_TIMEOUT_S = 30.0
# (method, path prefix, most bytes): the first match wins. Template and flow sources are edited whole.
BODY_LIMITS: tuple[tuple[str, str, int], ...] = (
    ("PUT", "/api/templates/", 1024 * KIB),
    ("POST", "/api/templates/", 1024 * KIB),
    ("PUT", "/api/flows/", 1024 * KIB),
    ("POST", "/studio/", 1024 * KIB),
    ("POST", "/webhooks/", 256 * KIB),
    ("POST", "/ingest/", 1024 * KIB),  # one event is at most ingest.max_event_bytes (1 MB by default)
    ("POST", "/api/events/validate", 1024 * KIB),
)


def body_limit(method: str, path: str) -> int:
    """The largest body a request to ``method path`` may send."""
    for limit_method, prefix, most in BODY_LIMITS:
        if method == limit_method and path.startswith(prefix):
            return most
    return DEFAULT_BODY_BYTES


class RequestRefused(HTTPException):
    """A body too large (413) or too slow (408): raised from ``receive`` so the route stops reading."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _refusal(error: RequestRefused) -> JSONResponse:
    return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers={"Connection": "close"})


class RequestLimits:
    """413 for a declared or streamed body over the route's limit; 408 for a body slower than 30 s."""

    def __init__(self, app: ASGIApp, *, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self._app = app
        self._read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            too_large = RequestRefused(TOO_LARGE, f"body larger than {limit} bytes")
            await _refusal(too_large)(scope, receive, send)
            return
        deadline = time.monotonic() + self._read_timeout_s
        received = 0
        body_done = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()  # e.g. waiting for the client to disconnect: no deadline then
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise RequestRefused(TOO_SLOW, "request body too slow") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > limit:
                    raise RequestRefused(TOO_LARGE, f"body larger than {limit} bytes")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, limited_receive, tracking_send)
        except RequestRefused as refused:
            if not started:
                await _refusal(refused)(scope, receive, send)
