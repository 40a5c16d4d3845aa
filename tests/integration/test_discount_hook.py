"""Offer steps: the journey's discount code is registered in the shop (signed) before the message goes out."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from recovery.ingest.embedded_broker import free_port
from tests.harness import cart, customer, event, eventually, running_service, service_settings

pytestmark = [pytest.mark.kafka]

# The hook's own secret, shared with the shop: the link secret never leaves the service.
HOOK_SECRET = "discount-hook-secret-" + "h" * 32
FLOWS = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: offer, after: 0s, channel: email, template: TEMPLATE, offer: OFFER}
"""


@pytest.mark.parametrize(
    ("template", "offer", "percent", "free_shipping"),
    [
        ("cart_offer", "{percent: 10, valid_for: 48h}", 10, False),
        # A free-shipping code is registered the same way, with percent 0 and free_shipping true.
        ("free_shipping_offer", "{free_shipping: true, valid_for: 48h}", 0, True),
    ],
)
async def test_the_code_is_registered_in_the_shop_before_the_email_that_carries_it(
    kafka_bootstrap: str, tmp_path: Path, template: str, offer: str, percent: int, free_shipping: bool
) -> None:
    """The shop's endpoint fails once (503): the email waits, then goes out with the registered code."""
    received: list[dict[str, Any]] = []
    answers = [503]

    async def register(request: web.Request) -> web.Response:
        body = await request.read()
        expected = hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert request.headers["X-Recovery-Signature"] == f"sha256={expected}"
        if answers:
            return web.Response(status=answers.pop())
        received.append(json.loads(body))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/discounts", register)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = service_settings(
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        flows=FLOWS.replace("TEMPLATE", template).replace("OFFER", offer),
        idle_after="0s",
        security={"link_secret": "test-link-secret-" + "x" * 32},
        offers={"register_url": f"http://127.0.0.1:{port}/discounts", "register_secret": HOOK_SECRET},
        channels={
            "transport": "outbox",
            "outbox_dir": tmp_path / "outbox",
            "retry": {"base_delay": "1s", "max_delay": "1s"},
        },
    )
    try:
        async with running_service(settings) as harness:
            await harness.send(event("cart.updated", "cart-o", customer=customer(), cart=cart(80.0)))
            await eventually(lambda: len(harness.outbox()) >= 1, timeout=30)
            [email] = harness.outbox()
    finally:
        await runner.cleanup()
    [registered] = received
    assert registered["percent"] == percent and registered["code"].startswith("CART-")
    assert registered["free_shipping"] is free_shipping
    assert registered["code"] in email["text"]
