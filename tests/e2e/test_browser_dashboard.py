"""The dashboard as a marketer sees it in a 1280-pixel-wide window: every chart fits the page, and the A/B
split has its own table, verdict and chart with intervals."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.store.schema import journeys, messages
from tests.e2e.test_browser_studio import Served, served

__all__ = ["served"]


async def split_sends(engine: AsyncEngine) -> None:
    """Forty journeys whose reminder was split between two variants."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        for n in range(40):
            journey = f"j{n:03d}"
            await conn.execute(
                journeys.insert().values(
                    journey_id=journey,
                    cart_id=f"c{n}",
                    flow="abandoned_cart",
                    trigger="cart.abandoned",
                    customer_key=f"k{n}",
                    store="fr",
                    status="active",
                    holdout=False,
                    started_at=now,
                    trigger_event_at=now,
                    messages_sent=1,
                    clicked=False,
                    flow_version=1,
                )
            )
            await conn.execute(
                messages.insert().values(
                    message_id=f"{journey}:reminder",
                    journey_id=journey,
                    step_id=f"{journey}:reminder",
                    cart_id=f"c{n}",
                    customer_key=f"k{n}",
                    flow="abandoned_cart",
                    step="reminder",
                    channel="email",
                    template="cart_reminder",
                    variant="classic" if n % 2 else "offer_first",
                    state="sent",
                    attempts=1,
                    created_at=now,
                    sent_at=now,
                    updated_at=now,
                )
            )


async def test_at_1280_pixels_no_chart_is_wider_than_the_page(served: Served, browser: Browser, tmp_path: Path) -> None:
    """Charts sit in a responsive grid inside the page; the variants' table says the split is not significant."""
    await split_sends(served.engine)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{served.base}/dashboard?period=")
    await page.fill("input[name=token]", "mia-token")
    await page.click("button[type=submit]")
    await page.wait_for_selector("figure.chart svg")
    await page.screenshot(path=str(tmp_path / "dashboard-1280.png"), full_page=True)
    page_width = await page.evaluate("document.documentElement.clientWidth")
    assert await page.evaluate("document.documentElement.scrollWidth") <= page_width
    rights = await page.eval_on_selector_all("figure.chart", "els => els.map(e => e.getBoundingClientRect().right)")
    assert rights and max(rights) <= page_width
    assert await page.is_visible("figure[aria-label='A/B variants'] svg")
    verdict = await page.text_content("[data-testid=verdict]")
    assert verdict is not None and "not significant yet" in verdict
    rows = await page.eval_on_selector_all(
        "[data-testid=variants] tr[data-variant]", "rs => rs.map(r => r.dataset.variant)"
    )
    assert sorted(rows) == ["classic", "offer_first"]
