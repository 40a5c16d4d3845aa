"""The running service serves HTTP beside the consumer: a tracked link in a sent email redirects and counts."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from recovery.store.schema import journeys
from tests.harness import cart, customer, event, eventually, running_service, service_settings

pytestmark = [pytest.mark.kafka]


async def test_a_click_on_the_reminder_link_redirects_to_the_cart_and_is_published(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The reminder's restore link goes through /r/: 302 to the shop, journey marked clicked, event out."""
    settings = service_settings(
        bootstrap=kafka_bootstrap, database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", workdir=tmp_path
    )
    async with running_service(settings) as harness:
        base = f"http://127.0.0.1:{harness.service.http_port}"
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/healthz")).status_code == 200
            await eventually(lambda: True)
            assert (await client.get("/readyz")).status_code == 200
            await harness.send(event("cart.updated", "cart-h", customer=customer(), cart=cart()))
            await eventually(lambda: len(harness.outbox()) >= 1, timeout=20)
            [email] = harness.outbox()
            links = re.findall(r"https?://[^\s\"<>]+/r/[A-Za-z0-9._-]+", email["text"])
            assert links, "the email carries tracked links"
            tracked = links[0].replace(settings.http.public_url, base)
            answer = await client.get(tracked, headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
            assert answer.status_code == 302
            assert answer.headers["location"].startswith("https://shop.example.com/")
            forged = await client.get(tracked[:-3] + "abc")
            assert forged.status_code == 404 and "location" not in forged.headers

        async def clicked() -> bool:
            async with harness.service.engine.connect() as conn:
                return bool(await conn.scalar(select(journeys.c.clicked)))

        await eventually(clicked)
        published = await harness.read_topic("messages", count=4)
        assert "message.clicked" in [m["type"] for m in published]
