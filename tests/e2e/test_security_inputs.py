"""Hostile inputs from outside: non-http(s) URLs, out-of-range numbers and dates, a callback offer after the order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.clock import ManualClock
from recovery.events import Rejection, parse_event
from recovery.render.signed_links import LinkSigner
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head
from recovery.store.schema import callback_tasks, carts
from tests.e2e.test_agent_page import signed_in, signed_in_as_marketer
from tests.e2e.test_http_links import DESKTOP, client_for, path_of, seed, signer
from tests.fakes.desk import seed_offer, seed_task

NOW = datetime(2026, 1, 9, 16, 50, tzinfo=UTC)
SECRET = "offer-secret"
TOKENS = {"tok-a": {"role": "agent", "name": "Inès"}, "tok-m": "marketer"}
HOSTILE_URLS = ["javascript:alert(document.cookie)", "JaVaScRiPt:alert(1)", "data:text/html,<script>", " javascript:x"]


@pytest.fixture
async def sqlite(tmp_path: object) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/security.db")
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


def served(engine: AsyncEngine) -> httpx.AsyncClient:
    settings = Settings(security={"link_secret": SECRET, "api_tokens": TOKENS})
    app = create_app(engine=engine, settings=settings, clock=ManualClock(NOW))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk.test")


def cart_event(restore_url: str, item_url: str = "https://shop.example/p/1") -> bytes:
    item = {"sku": "S1", "name": "Mug", "quantity": 1, "unit_price": 10, "url": item_url}
    cart = {"currency": "EUR", "value": 10, "restore_url": restore_url, "items": [item]}
    event = {"id": "e-1", "type": "cart.updated", "occurred_at": "2026-01-09T10:00:00+01:00", "cart_id": "c-1"}
    return json.dumps({**event, "cart": cart}).encode()


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_an_event_with_a_non_http_restore_url_is_dead_lettered_naming_the_field(url: str) -> None:
    """Ingest refuses javascript:/data: URLs with a reason that names the field and the rule."""
    rejected = parse_event(cart_event(url))
    assert isinstance(rejected, Rejection)
    assert "field 'cart.restore_url': only http(s) URLs are accepted" in rejected.reason


def test_an_item_url_that_is_not_http_is_refused_and_https_urls_pass() -> None:
    """Item links follow the same rule; ordinary https links are accepted."""
    rejected = parse_event(cart_event("https://shop.example/r/1", item_url="javascript:alert(1)"))
    assert isinstance(rejected, Rejection) and "'cart.items.0.url': only http(s)" in rejected.reason
    assert not isinstance(parse_event(cart_event("https://shop.example/r/1")), Rejection)


@pytest.mark.parametrize("url", HOSTILE_URLS)
async def test_feedback_never_redirects_to_a_stored_javascript_url(engine: AsyncEngine, url: str) -> None:
    """/f/ checks the scheme like /r/: a bad stored restore_url gives the thank-you page, not a redirect."""
    await seed(engine)
    async with engine.begin() as conn:
        await conn.execute(update(carts).values(cart={"currency": "EUR", "restore_url": url, "items": []}))
    async with client_for(engine) as http:
        response = await http.get(path_of(signer().feedback_url("journey-1", "other")), headers={"User-Agent": DESKTOP})
    assert response.status_code == 200
    assert "location" not in response.headers and "Thank you" in response.text


async def test_the_agent_page_never_shows_a_live_javascript_link(sqlite: AsyncEngine) -> None:
    """A restore_url stored before the ingest check renders as no link at all on /agent/tasks/{id}."""
    task_id = await seed_task(sqlite, NOW)
    async with sqlite.begin() as conn:
        snapshot = {"currency": "EUR", "value": "320.00", "items": [], "restore_url": "javascript:alert(1)"}
        await conn.execute(update(carts).values(cart=snapshot))
    async with served(sqlite) as http:
        await signed_in(http, "tok-a")
        page = await http.get(f"/agent/tasks/{task_id}")
    assert page.status_code == 200
    assert "javascript:" not in page.text


async def test_call_back_later_beyond_90_days_is_a_422(sqlite: AsyncEngine) -> None:
    """``call_back_at`` in year 9999 (or 91 days ahead) would park the task forever: refused with 422."""
    task_id = await seed_task(sqlite, NOW)
    auth = {"Authorization": "Bearer tok-a"}
    async with served(sqlite) as http:
        assert (await http.post(f"/api/callbacks/{task_id}/claim", headers=auth)).status_code == 200
        for moment in ("9999-12-31T23:00:00+00:00", (NOW + timedelta(days=91)).isoformat()):
            body = {"outcome": "call_back_later", "call_back_at": moment}
            response = await http.post(f"/api/callbacks/{task_id}/complete", json=body, headers=auth)
            assert response.status_code == 422
            assert "within 90 days" in response.text
        body = {"outcome": "call_back_later", "call_back_at": (NOW + timedelta(days=89)).isoformat()}
        assert (await http.post(f"/api/callbacks/{task_id}/complete", json=body, headers=auth)).status_code == 200


@pytest.mark.parametrize("query", ["old=0&new=1e26", "old=-1&new=0", f"old=0&new={2**63}", "old=abc&new=0"])
async def test_studio_diff_with_an_out_of_range_version_is_a_422(sqlite: AsyncEngine, query: str) -> None:
    """/studio/diff?new=1e26 and friends: 422 from validation, never a 500."""
    async with served(sqlite) as http:
        await signed_in_as_marketer(http)
        response = await http.get(f"/studio/diff?path=en/cart_reminder.email.subject&{query}")
    assert response.status_code == 422


@pytest.mark.parametrize("limit", ["0", "501", str(2**63), "1e26"])
async def test_a_callbacks_limit_out_of_range_is_a_422(sqlite: AsyncEngine, limit: str) -> None:
    """The queue's ``limit`` is bounded: out-of-range values are 422."""
    async with served(sqlite) as http:
        response = await http.get(f"/api/callbacks?limit={limit}", headers={"Authorization": "Bearer tok-a"})
    assert response.status_code == 422


def offer_path(message_id: str) -> str:
    url = LinkSigner(SECRET, "http://desk.test", clock=ManualClock(NOW)).callback_url(message_id)
    return url.removeprefix("http://desk.test")


async def test_a_callback_offer_of_an_ordered_cart_creates_no_task(sqlite: AsyncEngine) -> None:
    """After the order, /c/ says politely that the order is done, and booking creates no task."""
    message_id = await seed_offer(sqlite, NOW)
    async with sqlite.begin() as conn:
        await conn.execute(update(carts).where(carts.c.cart_id == "cart-offer").values(ordered_at=NOW))
    async with served(sqlite) as http:
        page = await http.get(offer_path(message_id))
        booked = await http.post(offer_path(message_id), data={"slot": "asap"})
    assert page.status_code == 200 and "commande est déjà passée" in page.text and "<form" not in page.text
    assert booked.status_code == 200 and "data-ordered" in booked.text
    async with sqlite.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(callback_tasks)) == 0


async def test_a_callback_offer_before_any_order_still_books(sqlite: AsyncEngine) -> None:
    """Without an order the offer works as before: a task is created."""
    message_id = await seed_offer(sqlite, NOW)
    async with served(sqlite) as http:
        booked = await http.post(offer_path(message_id), data={"slot": "asap"})
    assert booked.status_code == 200 and "data-ordered" not in booked.text
    async with sqlite.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(callback_tasks)) == 1
