"""The running service serves HTTP beside the consumer: a tracked link in a sent email redirects and counts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from recovery.store.schema import conversions, journeys, steps
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
        engine = harness.service.engine
        assert engine is not None
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
            async with engine.connect() as conn:
                return bool(await conn.scalar(select(journeys.c.clicked)))

        await eventually(clicked)
        published = await harness.read_topic("messages", count=4)
        assert "message.clicked" in [m["type"] for m in published]


async def _conversions(harness: Any) -> list[Any]:
    async with harness.service.engine.connect() as conn:
        return list((await conn.execute(select(conversions))).mappings())


async def test_a_click_then_an_order_is_credited_to_that_message_and_step(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Reminder clicked, then bought: one conversion, kind clicked, on the reminder; the journey converts."""
    settings = service_settings(
        bootstrap=kafka_bootstrap, database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", workdir=tmp_path
    )
    async with running_service(settings) as harness:
        base = f"http://127.0.0.1:{harness.service.http_port}"
        await harness.send(event("cart.updated", "cart-a", customer=customer(), cart=cart(120.0)))
        await eventually(lambda: len(harness.outbox()) >= 1, timeout=20)
        link = re.findall(r"https?://[^\s\"<>]+/r/[A-Za-z0-9._-]+", harness.outbox()[0]["text"])[0]
        async with httpx.AsyncClient() as client:
            answer = await client.get(link.replace(settings.http.public_url, base), headers={"User-Agent": "Firefox"})
        assert answer.status_code == 302
        await harness.send(
            event("order.completed", "cart-a", order={"id": "ord-a", "value": 120.0, "currency": "EUR"}),
            event("order.completed", "cart-none", order={"id": "ord-none", "value": 50.0, "currency": "EUR"}),
        )
        await eventually(lambda: harness.service.stats.applied >= 3)
        [conversion] = await _conversions(harness)
        assert conversion["order_id"] == "ord-a"
        assert (conversion["step"], conversion["kind"], conversion["channel"]) == ("reminder", "clicked", "email")
        assert float(conversion["revenue"]) == 120.0
        published = await harness.read_topic("messages", count=6)
        converted = [m for m in published if m["type"] == "journey.converted"]
        assert [m["revenue"] for m in converted] == [120.0]


async def test_a_holdout_journey_gets_no_message_but_its_order_counts_for_the_control_group(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """With every journey in the holdout, nothing is sent, and the later order is recorded as holdout."""
    settings = service_settings(
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        guards={"holdout_percent": 100},
    )
    async with running_service(settings) as harness:
        engine = harness.service.engine
        assert engine is not None
        await harness.send(event("cart.updated", "cart-c", customer=customer(), cart=cart()))

        async def skipped() -> bool:
            async with engine.connect() as conn:
                return (await conn.scalar(select(steps.c.reason).where(steps.c.name == "reminder"))) == "holdout"

        await eventually(skipped, timeout=20)
        await harness.send(event("order.completed", "cart-c", order={"id": "ord-c", "value": 80.0, "currency": "EUR"}))
        await eventually(lambda: harness.service.stats.applied >= 2)
        [conversion] = await _conversions(harness)
        assert conversion["kind"] == "holdout" and conversion["holdout"] is True
        assert harness.outbox() == []
