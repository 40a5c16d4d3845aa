"""The studio's flow form in a real headless Chromium: a marketer changes a delay, adds an A/B split, is
refused on a zero weight with its line, saves, and sends a test to themselves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app, serve_http
from recovery.clock import SystemClock
from recovery.rules.flow_check import check_flow_source
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head
from recovery.store.schema import flow_versions
from tests.e2e.test_browser_studio import ROOT, TOKENS, Served, sign_in, until


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The HTTP app with the shipped flows and templates; messages go to local outbox files (no providers)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'flows.db'}")
    await upgrade_to_head(engine)
    settings = Settings(
        security={"link_secret": "studio-secret", "api_tokens": TOKENS},
        templates_dir=ROOT / "templates",
        flows_file=ROOT / "config" / "flows.yaml",
        channels={"transport": "outbox", "outbox_dir": tmp_path / "outbox"},
    )
    app = create_app(engine=engine, settings=settings, clock=SystemClock())
    stop, started = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(serve_http(app, host="127.0.0.1", port=0, stop=stop, started=started))
    try:
        await asyncio.wait_for(started.wait(), timeout=10)
        yield Served(engine=engine, base=f"http://127.0.0.1:{app.state.http_port}")
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=10)
        await engine.dispose()


async def saved(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list(await conn.scalars(select(flow_versions.c.source).order_by(flow_versions.c.version)))


async def test_a_marketer_changes_a_delay_and_adds_an_ab_split_without_an_operator(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    """The form writes the YAML beside it; a 0 weight is refused at its line; the fixed split is saved."""
    page = await sign_in(browser, served, "/studio/flows/abandoned_cart")
    reminder = page.locator("fieldset.step").first
    await reminder.locator(".f-after").fill("2h")
    assert "after: 2h" in await page.input_value("#source")

    await reminder.locator(".add-variant").click()
    await reminder.locator(".add-variant").click()
    rows = reminder.locator(".variant")
    await rows.nth(0).locator(".v-name").fill("classic")
    await rows.nth(0).locator(".v-template").fill("cart_reminder")
    await rows.nth(1).locator(".v-name").fill("short")
    await rows.nth(1).locator(".v-template").fill("cart_offer")
    await rows.nth(1).locator(".v-weight").fill("0")
    yaml_text = await page.input_value("#source")
    assert "variants:" in yaml_text and "template: cart_reminder\n" not in yaml_text

    await page.click("#save")
    error = await page.wait_for_selector("#errors li")
    assert error is not None and "greater than 0" in (await error.text_content() or "")
    line = int(await error.get_attribute("data-line") or 0)
    assert "weight: 0" in yaml_text.splitlines()[line - 1]
    assert await saved(served.engine) == []

    await rows.nth(1).locator(".v-weight").fill("50")
    await page.click("#save")
    await until(page, "document.getElementById('save-status').textContent.includes('version 1')")
    (source,) = await saved(served.engine)
    flow, problems = check_flow_source(source, name="abandoned_cart", catalogue=None, settings=None)
    assert flow is not None, problems
    step = flow.steps[0]
    assert step.after.total_seconds() == 7200
    assert [(v.name, v.weight, v.template) for v in step.variants or []] == [
        ("classic", 50, "cart_reminder"),
        ("short", 50, "cart_offer"),
    ]
    # The other steps came through the form unchanged.
    assert [s.name for s in flow.steps] == ["reminder", "sms_offer", "free_shipping", "guest_checkout", "call_me"]
    assert flow.steps[2].offer is not None and flow.steps[2].offer.free_shipping
    async with served.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(flow_versions)) == 1

    await page.fill("#test-email", "mia@example.com")
    await page.click("#test-send")
    await page.wait_for_selector("#test-status li")
    outcomes = await page.eval_on_selector_all("#test-status li", "items => items.map(i => i.textContent)")
    assert "reminder / classic (email): sent" in outcomes and "reminder / short (email): sent" in outcomes
    sent = (tmp_path / "outbox" / "email.jsonl").read_text(encoding="utf-8")
    assert sent.count('"to": "mia@example.com"') >= 2 and '"subject": "[TEST] ' in sent
