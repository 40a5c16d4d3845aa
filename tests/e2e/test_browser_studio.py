"""The marketers' studio and dashboard in a real headless Chromium."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.clock import SystemClock
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head
from recovery.store.schema import template_versions
from tests.e2e.conftest import Serve

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"mia-token": {"role": "marketer", "name": "Mia"}}
SMS = "fr/cart_reminder.sms.txt"


@dataclass
class Served:
    engine: AsyncEngine
    base: str


@pytest.fixture
async def served(tmp_path: Path, serve: Serve) -> AsyncIterator[Served]:
    """The HTTP app on a real port over a migrated SQLite database, with the shipped templates and flows."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'studio.db'}")
    await upgrade_to_head(engine)
    settings = Settings(
        security={"link_secret": "studio-secret", "api_tokens": TOKENS},
        templates_dir=ROOT / "templates",
        flows_file=ROOT / "config" / "flows.yaml",
    )
    app = create_app(engine=engine, settings=settings, clock=SystemClock())
    try:
        async with serve(app) as base:
            yield Served(engine=engine, base=base)
    finally:
        await engine.dispose()


async def sign_in(browser: Browser, served: Served, target: str) -> Page:
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await page.goto(f"{served.base}{target}")
    await page.fill("input[name=token]", "mia-token")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{served.base}{target}")
    return page


async def saved_versions(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(template_versions)) or 0)


async def until(page: Page, expression: str, timeout_s: float = 15.0) -> None:
    """Wait until ``expression`` is true in the page. ``wait_for_function`` evaluates with ``eval``, which the
    studio's CSP (no 'unsafe-eval') refuses; ``page.evaluate`` goes through the debugger, outside the CSP."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await page.evaluate(expression):
        assert asyncio.get_running_loop().time() < deadline, f"still false after {timeout_s} s: {expression}"
        await asyncio.sleep(0.05)


async def segments(page: Page) -> int:
    await until(page, "document.getElementById('sms-info').dataset.segments !== undefined")
    return int(await page.eval_on_selector("#sms-info", "e => e.dataset.segments"))


async def test_marketer_edits_previews_is_refused_on_a_typo_saves_and_rolls_back(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    """Sign in, edit an SMS, the counter moves, a typo shows inline and is refused, fix, save, roll back."""
    page = await sign_in(browser, served, f"/studio?path={SMS}")
    first = await segments(page)
    assert first >= 1

    await page.fill("#source", "Bonjour {{ customer.first_name }} " + "votre panier vous attend. " * 12)
    await until(page, f"Number(document.getElementById('sms-info').dataset.segments) > {first}")
    await page.fill("#source", "Bonjour 🛒 {{ customer.first_name }}")
    await until(page, "document.getElementById('sms-info').dataset.encoding === 'UCS-2'")
    assert await page.is_visible("#sms-warning")

    await page.fill("#source", "Bonjour\n{{ cart.totl }}")
    error = await page.wait_for_selector("#errors li")
    assert error is not None
    assert "cart.totl" in await error.inner_text() and await error.get_attribute("data-line") == "2"
    assert "▶2" in await page.inner_text("#gutter")
    await page.click("#save")
    await page.wait_for_selector("#save-status:has-text('✗')")
    assert await saved_versions(served.engine) == 0

    await page.fill("#source", "Votre panier vous attend, {{ customer.first_name }} !")
    await page.wait_for_selector("#errors li", state="detached")
    await page.fill("#comment", "plus court")
    async with page.expect_navigation():
        await page.click("#save")
    assert await saved_versions(served.engine) == 1
    assert "(en ligne)" in await page.inner_text("tr[data-version='1']") or "(live)" in await page.inner_text(
        "tr[data-version='1']"
    )
    async with page.expect_navigation():
        await page.click("tr[data-version='0'] button.rollback")
    assert await saved_versions(served.engine) == 2
    assert await page.input_value("#source") == (ROOT / "templates" / SMS).read_text(encoding="utf-8")
    await page.screenshot(path=str(tmp_path / "studio.png"), full_page=True)


async def test_email_preview_shows_subject_and_html_in_a_sandboxed_frame(served: Served, browser: Browser) -> None:
    """Typing in a subject updates the preview; the HTML sits in a sandboxed iframe."""
    page = await sign_in(browser, served, "/studio?path=en/cart_reminder.email.subject")
    await page.fill("#source", "Hello {{ customer.first_name }}, typed just now")
    await page.wait_for_selector("#preview-subject:has-text('typed just now')")
    assert await page.get_attribute("#preview-html", "sandbox") == ""
    assert "<html" in (await page.eval_on_selector("#preview-html", "e => e.srcdoc")).lower()


async def test_dashboard_draws_its_charts(served: Served, browser: Browser, tmp_path: Path) -> None:
    """Every chart of the dashboard is drawn, with the period picker and the store filter."""
    page = await sign_in(browser, served, "/dashboard")
    assert await page.locator("figure.chart svg").count() >= 7
    assert await page.is_visible("select[name=period]") and await page.is_visible("select[name=store]")
    await page.select_option("select[name=period]", "7d")
    async with page.expect_navigation():
        await page.click("form.studio-controls button[type=submit]")
    assert "period=7d" in page.url and await page.locator("figure.chart svg").count() >= 7
    await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
