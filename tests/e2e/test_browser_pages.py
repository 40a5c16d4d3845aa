"""A shopper's pages in a real headless Chromium: unsubscribing from a reminder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser
from sqlalchemy import select

from recovery.store.schema import customers
from tests.harness import cart, customer, event, eventually, running_service, service_settings

pytestmark = [pytest.mark.kafka]


async def test_the_unsubscribe_link_of_a_reminder_opts_the_shopper_out_in_a_browser(
    kafka_bootstrap: str, tmp_path: Path, browser: Browser
) -> None:
    """Open the email's unsubscribe link, press the button, see the confirmation; consent is now off."""
    settings = service_settings(
        bootstrap=kafka_bootstrap, database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", workdir=tmp_path
    )
    shopper = customer()
    async with running_service(settings) as harness:
        await harness.send(event("cart.updated", "cart-b", customer=shopper, cart=cart()))
        await eventually(lambda: len(harness.outbox()) >= 1, timeout=20)
        public = settings.http.public_url
        [link] = re.findall(re.escape(public) + r"/u/[A-Za-z0-9._-]+", harness.outbox()[0]["text"])
        local = link.replace(public, f"http://127.0.0.1:{harness.service.http_port}")
        page = await browser.new_page()
        await page.goto(local)
        assert "Se désinscrire" in await page.content()
        await page.click("button[type=submit]")
        await page.wait_for_selector("text=C’est fait")
        await page.screenshot(path=str(tmp_path / "unsubscribed.png"))
        assert harness.service.engine is not None
        async with harness.service.engine.connect() as conn:
            consent = await conn.scalar(
                select(customers.c.consent_email).where(customers.c.customer_key == shopper["id"])
            )
        assert consent is False
