"""A local helpdesk endpoint (Freshdesk / Zendesk stand-in) that records signed task posts."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.fakes.ports import free_port

SECRET = "helpdesk-secret"


@dataclass
class Helpdesk:
    """A local HTTP endpoint that records signed posts and answers from a script (then 201)."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    answers: list[int] = field(default_factory=list)


@pytest.fixture
async def helpdesk() -> AsyncIterator[Helpdesk]:
    desk = Helpdesk()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if request.headers.get("X-Recovery-Signature") != expected:
            desk.bad_signatures += 1
            return web.Response(status=401)
        if desk.answers:
            return web.Response(status=desk.answers.pop(0))
        desk.received.append(json.loads(body) | {"key": request.headers["Idempotency-Key"]})
        return web.json_response({"ticket": len(desk.received)}, status=201)

    app = web.Application()
    app.router.add_post("/tickets", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    desk.url = f"http://127.0.0.1:{port}/tickets"
    try:
        yield desk
    finally:
        await runner.cleanup()
