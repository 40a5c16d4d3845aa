"""The callback-offer page /c/: a shopper picks a time inside the calling hours and the task is due then."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.clock import ManualClock
from recovery.render.signed_links import LinkSigner
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head
from recovery.store.schema import callback_tasks
from tests.fakes.desk import seed_offer, seed_task

# Friday 9 January 2026, 16:50 UTC = 17:50 in Paris: one slot left today, Saturday open, Sunday closed.
NOW = datetime(2026, 1, 9, 16, 50, tzinfo=UTC)
SECRET = "offer-secret"


@pytest.fixture
async def engine(tmp_path: object) -> AsyncIterator[AsyncEngine]:
    engine = create_engine("sqlite+aiosqlite:///" + str(tmp_path) + "/offer.db")
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


def client(engine: AsyncEngine) -> httpx.AsyncClient:
    settings = Settings(security={"link_secret": SECRET})
    app = create_app(engine=engine, settings=settings, clock=ManualClock(NOW))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop.test")


def offer_path(message_id: str) -> str:
    return (
        LinkSigner(SECRET, "http://shop.test", clock=ManualClock(NOW))
        .callback_url(message_id)
        .removeprefix("http://shop.test")
    )


async def due_ats(engine: AsyncEngine) -> list[datetime]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(callback_tasks.c.due_at))).scalars())


async def test_the_page_offers_slots_inside_calling_hours_in_the_shoppers_time(engine: AsyncEngine) -> None:
    """French shopper in Paris on Friday 17:50: 18:30 today, Saturday 10:00-16:30, nothing on Sunday."""
    path = offer_path(await seed_offer(engine, NOW))
    async with client(engine) as http:
        page = await http.get(path)
    assert page.status_code == 200
    assert "Quand souhaitez-vous être rappelé" in page.text
    labels = re.findall(r"<legend>([^<]+)</legend>", page.text)
    assert labels == ["vendredi 9 janvier", "samedi 10 janvier"]
    values = re.findall(r'name="slot" value="([^"]+)"', page.text)
    assert values[0] == "asap"
    assert values[1] == "2026-01-09T17:30:00+00:00"  # 18:30 in Paris
    assert len(values) == 1 + 1 + 14
    assert "set-cookie" not in page.headers  # shoppers get no session


async def test_picking_a_slot_makes_the_task_due_then_and_picking_again_moves_it(engine: AsyncEngine) -> None:
    """The chosen slot becomes the task's due time; a second choice reschedules the same task."""
    path = offer_path(await seed_offer(engine, NOW))
    async with client(engine) as http:
        booked = await http.post(path, data={"slot": "2026-01-10T13:00:00+00:00"})
        assert booked.status_code == 200 and "samedi 10 janvier 14:00" in booked.text
        assert await due_ats(engine) == [datetime(2026, 1, 10, 13, tzinfo=UTC)]
        await http.post(path, data={"slot": "2026-01-10T09:30:00+00:00"})
    assert await due_ats(engine) == [datetime(2026, 1, 10, 9, 30, tzinfo=UTC)]


@pytest.mark.parametrize(
    "slot",
    ["2026-01-11T10:00:00+00:00", "2026-01-09T16:00:00+00:00", "2026-01-10T13:10:00+00:00", "soon", "2026-01-10T13:00"],
)
async def test_a_time_the_page_did_not_offer_is_refused(engine: AsyncEngine, slot: str) -> None:
    """Sunday, the past, off-grid or malformed times show the choice again and create no task."""
    path = offer_path(await seed_offer(engine, NOW))
    async with client(engine) as http:
        page = await http.post(path, data={"slot": slot})
    assert page.status_code == 200 and "plus disponible" in page.text
    assert await due_ats(engine) == []


async def test_as_soon_as_possible_is_the_next_open_moment(engine: AsyncEngine) -> None:
    """Without a choice the task is due now when the desk is open (17:50 on a Friday in Paris)."""
    path = offer_path(await seed_offer(engine, NOW))
    async with client(engine) as http:
        await http.post(path)
    assert await due_ats(engine) == [NOW]


async def test_an_english_speaking_shopper_gets_the_page_in_english_in_their_timezone(engine: AsyncEngine) -> None:
    """A shopper in New York sees New York times (Friday 11:50 there) in English."""
    path = offer_path(await seed_offer(engine, NOW, locale="en-US", timezone="America/New_York"))
    async with client(engine) as http:
        page = await http.get(path)
    assert "When would you like us to call?" in page.text
    assert re.findall(r"<legend>([^<]+)</legend>", page.text)[0] == "Friday 9 January"
    assert re.findall(r'name="slot" value="[^"]+"> (\d\d:\d\d)', page.text)[0] == "12:30"


async def test_a_forged_link_is_not_found(engine: AsyncEngine) -> None:
    """A tampered token is the usual 404 page."""
    path = offer_path(await seed_offer(engine, NOW))
    async with client(engine) as http:
        assert (await http.get(path[:-4] + "AAAA")).status_code == 404
        assert (await http.post(path[:-4] + "AAAA")).status_code == 404


async def test_with_capacity_one_per_hour_the_page_offers_only_hours_with_room(engine: AsyncEngine) -> None:
    """callbacks.per_hour = 1 and a call already due Saturday 14:00 Paris: 14:00 and 14:30 are not offered
    (nor accepted); "as soon as possible" with today's two last hours full is Saturday's opening."""
    await seed_task(engine, NOW, due_at=datetime(2026, 1, 10, 13, tzinfo=UTC))
    await seed_task(engine, NOW, cart_id="cart-now", due_at=datetime(2026, 1, 9, 16, 20, tzinfo=UTC))
    await seed_task(engine, NOW, cart_id="cart-today", due_at=datetime(2026, 1, 9, 17, 10, tzinfo=UTC))
    path = offer_path(await seed_offer(engine, NOW))
    settings = Settings(security={"link_secret": SECRET}, callbacks={"per_hour": 1})
    app = create_app(engine=engine, settings=settings, clock=ManualClock(NOW))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop.test") as http:
        page = await http.get(path)
        values = re.findall(r'name="slot" value="([^"]+)"', page.text)
        assert "2026-01-10T13:00:00+00:00" not in values and "2026-01-10T13:30:00+00:00" not in values
        assert "2026-01-09T17:30:00+00:00" not in values  # today's 18:30 hour is full too
        assert "2026-01-10T12:30:00+00:00" in values and "2026-01-10T14:00:00+00:00" in values
        refused = await http.post(path, data={"slot": "2026-01-10T13:00:00+00:00"})
        assert "plus disponible" in refused.text
        await http.post(path)
    assert datetime(2026, 1, 10, 9, tzinfo=UTC) in await due_ats(engine)  # Saturday 10:00 in Paris
