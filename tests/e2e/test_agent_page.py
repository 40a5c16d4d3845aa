"""The /agent page over HTTP: sign-in and roles, CSRF on every action, outcomes in the shopper's local time."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.clock import ManualClock
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head
from tests.fakes.desk import EMAIL, seed_shopper_context, seed_task

NOW = datetime(2026, 1, 7, 10, tzinfo=UTC)  # 11:00 in Paris
TOKENS = {"tok-a": {"role": "agent", "name": "Inès"}, "tok-b": {"role": "agent", "name": "Marc"}, "tok-m": "marketer"}


@pytest.fixture
async def engine(tmp_path: object) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/page.db")
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


def browser_like(engine: AsyncEngine, clock: ManualClock, **extra: Any) -> httpx.AsyncClient:
    settings = Settings(security={"link_secret": "s", "api_tokens": TOKENS}, **extra)
    app = create_app(engine=engine, settings=settings, clock=clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk.test")


async def signed_in(http: httpx.AsyncClient, token: str) -> str:
    """Sign in; return the page's CSRF token."""
    form = (await http.get("/login")).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    await http.post("/login", data={"token": token, "csrf_token": csrf.group(1)})
    page = await http.get("/agent")
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
    assert page.status_code == 200 and found
    return found.group(1)


async def test_only_agents_and_admins_open_the_desk(engine: AsyncEngine, clock: ManualClock) -> None:
    """Not signed in: to the login page; a marketer: 403."""
    async with browser_like(engine, clock) as http:
        assert (await http.get("/agent")).headers["location"] == "/login?next=%2Fagent"
        assert (await http.get("/agent/queue")).status_code == 303
        await signed_in_as_marketer(http)
        assert (await http.get("/agent")).status_code == 403


async def signed_in_as_marketer(http: httpx.AsyncClient) -> None:
    form = (await http.get("/login")).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    await http.post("/login", data={"token": "tok-m", "csrf_token": csrf.group(1)})


async def test_page_actions_need_the_csrf_token(engine: AsyncEngine, clock: ManualClock) -> None:
    """A claim posted without the session's CSRF header is refused and changes nothing."""
    task_id = await seed_task(engine, NOW)
    async with browser_like(engine, clock) as http:
        csrf = await signed_in(http, "tok-a")
        assert (await http.post(f"/agent/tasks/{task_id}/claim")).status_code == 403
        fragment = await http.get(f"/agent/tasks/{task_id}")
        assert 'data-status="open"' in fragment.text
        claimed = await http.post(f"/agent/tasks/{task_id}/claim", headers={"X-CSRF-Token": csrf})
    assert claimed.status_code == 200 and 'data-status="claimed"' in claimed.text
    assert claimed.headers["hx-trigger"] == "queue-changed"


async def test_a_task_held_by_a_colleague_shows_who_holds_it(engine: AsyncEngine, clock: ManualClock) -> None:
    """Marc sees that Inès holds the task and gets her name when he tries to claim it."""
    task_id = await seed_task(engine, NOW)
    async with browser_like(engine, clock) as ines, browser_like(engine, clock) as marc:
        await ines.post(f"/agent/tasks/{task_id}/claim", headers={"X-CSRF-Token": await signed_in(ines, "tok-a")})
        csrf = await signed_in(marc, "tok-b")
        answer = await marc.post(f"/agent/tasks/{task_id}/claim", headers={"X-CSRF-Token": csrf})
    assert "Inès holds this task" in answer.text and "Held by Inès" in answer.text


async def test_call_back_later_is_read_in_the_shoppers_local_time(engine: AsyncEngine, clock: ManualClock) -> None:
    """16:30 typed for a Paris shopper in January reopens the task at 15:30 UTC; the queue shows it waiting."""
    task_id = await seed_task(engine, NOW)
    async with browser_like(engine, clock) as http:
        csrf = await signed_in(http, "tok-a")
        await http.post(f"/agent/tasks/{task_id}/claim", headers={"X-CSRF-Token": csrf})
        form = {"outcome": "call_back_later", "call_back_at": "2026-01-08T16:30", "note": "", "csrf_token": csrf}
        done = await http.post(f"/agent/tasks/{task_id}/complete", data=form)
        api = await http.get(f"/api/callbacks/{task_id}", headers={"Authorization": "Bearer tok-a"})
        queue = await http.get("/agent/queue")
    assert 'data-status="open"' in done.text
    assert api.json()["due_at"] == datetime(2026, 1, 8, 15, 30, tzinfo=UTC).isoformat()
    assert "Thu 08/01 16:30" in queue.text


async def test_a_bad_outcome_form_shows_the_reason_and_keeps_the_claim(engine: AsyncEngine, clock: ManualClock) -> None:
    """call_back_later without a time: the reason is shown, the task stays claimed."""
    task_id = await seed_task(engine, NOW)
    async with browser_like(engine, clock) as http:
        csrf = await signed_in(http, "tok-a")
        await http.post(f"/agent/tasks/{task_id}/claim", headers={"X-CSRF-Token": csrf})
        answer = await http.post(
            f"/agent/tasks/{task_id}/complete", data={"outcome": "call_back_later", "csrf_token": csrf}
        )
    assert "needs call_back_at" in answer.text and 'data-status="claimed"' in answer.text


async def test_a_task_waiting_past_the_sla_is_flagged_late(engine: AsyncEngine, clock: ManualClock) -> None:
    """16 minutes after it fell due, an unclaimed task is marked late in the queue and in the API."""
    task_id = await seed_task(engine, NOW)
    clock.advance(timedelta(minutes=16))
    async with browser_like(engine, clock) as http:
        await signed_in(http, "tok-a")
        queue = await http.get("/agent/queue")
        api = await http.get(f"/api/callbacks/{task_id}", headers={"Authorization": "Bearer tok-a"})
    assert 'class="badge late"' in queue.text and api.json()["late"] is True


async def test_the_task_page_shows_the_shoppers_past_and_every_time_in_both_clocks(
    engine: AsyncEngine, clock: ManualClock
) -> None:
    """Email, store, attempt, earlier order, why they left, the code sent; times for the agent's clock
    (ISO for the browser, UTC without script) with the shopper's local time beside."""
    task_id = await seed_task(engine, NOW)
    await seed_shopper_context(engine, NOW)
    async with browser_like(engine, clock) as http:
        await signed_in(http, "tok-a")
        page = (await http.get(f"/agent/tasks/{task_id}")).text
    assert EMAIL in page and 'data-testid="store">default<' in page and "Attempt 1 / 3" in page
    assert "Earlier orders: <strong>1</strong>" in page and "60.00 EUR" in page
    assert "Why they left: Shipping costs" in page
    assert "CART-7KQ2MZ4H" in page and "−10 %" in page
    assert f'<time datetime="{NOW.isoformat()}" data-agent-clock>07/01 10:00 UTC</time>' in page
    assert "(shopper: Wed 07/01 11:00)" in page
    assert "First attempt." in page


async def test_an_unanswered_call_leaves_a_note_and_the_task_comes_back(
    engine: AsyncEngine, clock: ManualClock
) -> None:
    """No answer from the page: the task is open again (attempt 2 of 3) and the note is listed with its author."""
    task_id = await seed_task(engine, NOW)
    async with browser_like(engine, clock) as http:
        csrf = await signed_in(http, "tok-a")
        await http.post(f"/agent/tasks/{task_id}/claim", headers={"X-CSRF-Token": csrf})
        form = {"outcome": "no_answer", "note": "messagerie pleine", "csrf_token": csrf}
        done = await http.post(f"/agent/tasks/{task_id}/complete", data=form)
    assert 'data-status="open"' in done.text and "Attempt 2 / 3" in done.text
    assert "Inès · No answer · “messagerie pleine”" in done.text


async def test_send_link_from_the_page_needs_the_claim_and_says_why_it_cannot(
    engine: AsyncEngine, clock: ManualClock, tmp_path: Path
) -> None:
    """The buttons appear once claimed; without SMS consent the reason shows; by email the link leaves."""
    task_id = await seed_task(engine, NOW)
    await seed_shopper_context(engine, NOW, sms=False)
    outbox = {"transport": "outbox", "outbox_dir": tmp_path / "outbox"}
    async with browser_like(engine, clock, channels=outbox) as http:
        csrf = await signed_in(http, "tok-a")
        assert 'data-testid="send-link"' not in (await http.get(f"/agent/tasks/{task_id}")).text
        claimed = await http.post(f"/agent/tasks/{task_id}/claim", headers={"X-CSRF-Token": csrf})
        assert 'data-testid="send-link"' in claimed.text
        headers = {"X-CSRF-Token": csrf}
        assert (await http.post(f"/agent/tasks/{task_id}/send-link", data={"channel": "sms"})).status_code == 403
        by_sms = await http.post(f"/agent/tasks/{task_id}/send-link", data={"channel": "sms"}, headers=headers)
        assert "has not consented to sms" in by_sms.text
        by_email = await http.post(f"/agent/tasks/{task_id}/send-link", data={"channel": "email"}, headers=headers)
    assert "Link sent by email." in by_email.text
