"""``GET /f/{token}``: a "why did you leave?" answer is recorded once per journey, published, and leads to the cart."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.attribution import feedback_rows
from recovery.store.schema import feedback_answers, outbox_events
from tests.e2e.test_http_links import DESKTOP, RESTORE, SLACK, client_for, path_of, seed, signer


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    await seed(engine)
    async with client_for(engine) as http:
        yield http


async def answers(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        return [(r.journey_id, r.answer) for r in await conn.execute(select(feedback_answers))]


async def feedback_events(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox_events.c.payload).order_by(outbox_events.c.id))
        return [e for e in (json.loads(row.payload) for row in rows) if e["type"] == "feedback.received"]


async def test_answer_is_recorded_published_and_redirects_to_the_cart(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    """The answer is stored for the journey, feedback.received carries it, and the shopper lands on the cart."""
    url = signer().feedback_url("journey-1", "shipping_cost")
    response = await client.get(path_of(url), headers={"User-Agent": DESKTOP})
    assert response.status_code == 302 and response.headers["location"] == RESTORE
    assert await answers(engine) == [("journey-1", "shipping_cost")]
    [event] = await feedback_events(engine)
    assert event["answer"] == "shipping_cost" and event["journey_id"] == "journey-1" and event["cart_id"] == "cart-1"


async def test_same_answer_twice_counts_once_and_a_new_answer_replaces_it(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    """A double click records one answer and one event; a different answer later is the one that counts."""
    for _ in range(2):
        await client.get(path_of(signer().feedback_url("journey-1", "comparing")), headers={"User-Agent": DESKTOP})
    assert len(await feedback_events(engine)) == 1
    await client.get(path_of(signer().feedback_url("journey-1", "delivery_time")), headers={"User-Agent": DESKTOP})
    assert await answers(engine) == [("journey-1", "delivery_time")]
    assert [e["answer"] for e in await feedback_events(engine)] == ["comparing", "delivery_time"]
    async with engine.connect() as conn:
        assert await feedback_rows.answers_by_store(conn, since=None) == {"default": {"delivery_time": 1}}


async def test_link_scanners_record_nothing(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    """A link-preview bot following the link is not an answer."""
    response = await client.get(path_of(signer().feedback_url("journey-1", "other")), headers={"User-Agent": SLACK})
    assert response.status_code == 200
    assert await answers(engine) == []


@pytest.mark.parametrize("token", ["forged", "journey-1"])
async def test_forged_token_is_404(engine: AsyncEngine, client: httpx.AsyncClient, token: str) -> None:
    """A token that was not signed by the service records nothing."""
    assert (await client.get(f"/f/{token}")).status_code == 404
    assert await answers(engine) == []


async def test_unknown_answer_or_journey_is_404(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    """A signed token for an answer outside the list, or for no journey, records nothing."""
    for journey, answer in (("journey-1", "price"), ("journey-9", "other")):
        response = await client.get(path_of(signer().feedback_url(journey, answer)), headers={"User-Agent": DESKTOP})
        assert response.status_code == 404
    assert await answers(engine) == []
