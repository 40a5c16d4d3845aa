"""The agents' desk in a real headless Chromium: a task appears by itself, claim, outcome; a shopper picks a slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.clock import ManualClock
from recovery.render.signed_links import LinkSigner
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head
from recovery.store.schema import callback_tasks, steps
from tests.e2e.conftest import Serve
from tests.fakes.desk import EMAIL, PHONE, seed_offer, seed_shopper_context, seed_task

NOW = datetime(2026, 1, 7, 10, tzinfo=UTC)  # 11:00 in Paris, a Wednesday
TOKENS = {"agent-token": {"role": "agent", "name": "Inès"}}


@dataclass
class Desk:
    engine: AsyncEngine
    base: str
    clock: ManualClock


@pytest.fixture
async def desk(tmp_path: Path, serve: Serve) -> AsyncIterator[Desk]:
    """The HTTP app on a real port over a migrated SQLite database."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}")
    await upgrade_to_head(engine)
    clock = ManualClock(NOW)
    outbox = {"transport": "outbox", "outbox_dir": tmp_path / "outbox"}  # an agent's link can go out
    settings = Settings(security={"link_secret": "desk-secret", "api_tokens": TOKENS}, channels=outbox)
    app = create_app(engine=engine, settings=settings, clock=clock)
    try:
        async with serve(app) as base:
            yield Desk(engine=engine, base=base, clock=clock)
    finally:
        await engine.dispose()


async def signed_in_page(
    browser: Browser, desk: Desk, *, width: int = 1280, height: int = 800, timezone_id: str = "Europe/Paris"
) -> Page:
    page = await browser.new_page(viewport={"width": width, "height": height}, locale="fr-FR", timezone_id=timezone_id)
    await page.goto(f"{desk.base}/agent")
    assert page.url.startswith(f"{desk.base}/login")  # not signed in yet
    await page.fill("input[name=token]", "agent-token")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{desk.base}/agent")
    return page


async def test_an_agent_sees_a_new_task_appear_claims_it_and_records_the_outcome(
    desk: Desk, browser: Browser, tmp_path: Path
) -> None:
    """Sign in, a payment-failure task shows up without reloading, claim it, complete it, the queue empties."""
    page = await signed_in_page(browser, desk)
    await page.wait_for_selector("[data-testid=queue-empty]")
    task_id = await seed_task(desk.engine, NOW)
    row = await page.wait_for_selector(f"#queue tr[data-task='{task_id}']", timeout=10_000)
    assert row is not None
    assert "Paiement échoué" in await row.inner_text()
    await row.click()
    await page.wait_for_selector(f"#task article[data-task='{task_id}'][data-status=open]")
    assert await page.inner_text("[data-testid=local-time]") == "11:00"
    assert await page.get_attribute("a.call", "href") == f"tel:{PHONE}"
    assert "3-D Secure" in await page.inner_text("#task")
    await page.click("#task button.primary")
    await page.wait_for_selector(f"#task article[data-task='{task_id}'][data-status=claimed]")
    await page.screenshot(path=str(tmp_path / "agent-claimed.png"))
    await page.select_option("select[name=outcome]", "reached_recovered")
    await page.click("#task form button[type=submit]")
    await page.wait_for_selector(f"#task article[data-task='{task_id}'][data-status=done]")
    assert "Joint : commande" in await page.inner_text("[data-testid=outcome]")
    await page.wait_for_selector(f"#queue tr[data-task='{task_id}']", state="detached", timeout=10_000)


async def test_the_desk_fits_a_phone_screen(desk: Desk, browser: Browser) -> None:
    """At 390 px wide nothing scrolls sideways and the shopper's local time is readable."""
    await seed_task(desk.engine, NOW)
    page = await signed_in_page(browser, desk, width=390, height=844)
    await page.click("#queue tr[data-task]")
    await page.wait_for_selector("[data-testid=local-time]")
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    size = await page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('[data-testid=local-time]')).fontSize)"
    )
    assert size >= 28


async def test_a_shopper_picks_a_slot_on_the_offer_page_and_the_task_is_due_then(desk: Desk, browser: Browser) -> None:
    """On /c/ the shopper chooses Thursday 15:00 (Paris); the agents' task falls due at that moment."""
    message_id = await seed_offer(desk.engine, NOW)
    link = LinkSigner("desk-secret", desk.base, clock=desk.clock).callback_url(message_id)
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    await page.goto(link)
    chosen = datetime(2026, 1, 8, 14, tzinfo=UTC).isoformat()  # Thursday 15:00 in Paris
    await page.check(f"input[name=slot][value='{chosen}']")
    await page.click("button[type=submit]")
    assert "jeudi 8 janvier 15:00" in await page.inner_text("[data-when]")
    async with desk.engine.connect() as conn:
        due = await conn.scalar(select(callback_tasks.c.due_at))
    assert due == datetime(2026, 1, 8, 14, tzinfo=UTC)


async def test_an_agent_in_another_timezone_sees_the_shoppers_past_and_texts_the_link(
    desk: Desk, browser: Browser, tmp_path: Path
) -> None:
    """An agent in Montréal: due time in her clock (05:00) beside the shopper's (11:00); history, email, store,
    code sent and why they left on the page; after claiming, "par SMS" sends the link and says so."""
    task_id = await seed_task(desk.engine, NOW)
    await seed_shopper_context(desk.engine, NOW)
    page = await signed_in_page(browser, desk, timezone_id="America/Montreal")
    await page.click(f"#queue tr[data-task='{task_id}']")
    await page.wait_for_selector(f"#task article[data-task='{task_id}'][data-status=open]")
    due = await page.wait_for_selector("#task time[data-agent-clock][data-localised]")
    assert due is not None
    assert "05:00" in await due.inner_text()  # 10:00 UTC in Montréal
    text = await page.inner_text("#task")
    assert "client : mer. 07/01 11:00" in text or "client : Wed 07/01 11:00" in text
    assert EMAIL in text and "default" in await page.inner_text("[data-testid=store]")
    assert "Commandes précédentes: 1" in await page.inner_text("[data-testid=history]")
    assert "CART-7KQ2MZ4H" in await page.inner_text("[data-testid=offer]")
    assert "Frais de livraison" in await page.inner_text("[data-testid=feedback]")
    await page.click("#task button.primary")
    await page.wait_for_selector(f"#task article[data-task='{task_id}'][data-status=claimed]")
    await page.click("[data-testid=send-link] button:has-text('par SMS')")
    notice = await page.wait_for_selector("[data-testid=link-sent]")
    assert notice is not None
    assert "Lien envoyé par SMS" in await notice.inner_text()
    await page.screenshot(path=str(tmp_path / "agent-link-sent.png"), full_page=True)
    async with desk.engine.connect() as conn:
        assert await conn.scalar(select(steps.c.name)) == "agent_link_sms_1"
