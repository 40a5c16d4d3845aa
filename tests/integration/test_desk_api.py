"""The Agents' API on SQLite and PostgreSQL: roles, queue order, claims, releases, outcomes, expiry, races."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.clock import ManualClock
from recovery.desk.queue import TaskReason
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.schema import callback_events, callback_tasks, carts, consent_ledger, customers, outbox_events
from tests.fakes.desk import PHONE, seed_task

# Wednesday 7 January 2026, 10:00 UTC = 11:00 in Paris: inside the calling hours.
NOW = datetime(2026, 1, 7, 10, tzinfo=UTC)
TOKENS: dict[str, Any] = {
    "tok-ines": {"role": "agent", "name": "Inès"},
    "tok-marc": {"role": "agent", "name": "Marc"},
    "tok-mkt": "marketer",
    "tok-admin": "admin",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def desk_client(engine: AsyncEngine, clock: ManualClock) -> httpx.AsyncClient:
    settings = Settings(security={"link_secret": "s", "api_tokens": TOKENS})
    app = create_app(engine=engine, settings=settings, clock=clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk.test")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def http(engine: AsyncEngine, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    async with desk_client(engine, clock) as client:
        yield client


ROUTES = [
    ("GET", "/api/callbacks", None),
    ("GET", "/api/callbacks/{id}", None),
    ("POST", "/api/callbacks/{id}/claim", None),
    ("POST", "/api/callbacks/{id}/release", None),
    ("POST", "/api/callbacks/{id}/complete", {"outcome": "no_answer"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_desk_route_needs_an_agent_token(
    engine: AsyncEngine, http: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    """No token is 401, a marketer's token is 403, for every route of the Agents' API."""
    task_id = await seed_task(engine, NOW)
    url = path.format(id=task_id)
    assert (await http.request(method, url, json=body)).status_code == 401
    assert (await http.request(method, url, json=body, headers=bearer("nope"))).status_code == 401
    refused = await http.request(method, url, json=body, headers=bearer("tok-mkt"))
    assert refused.status_code == 403


async def test_an_admin_may_work_the_queue_too(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    """admin may use every route: an unnamed token claims as its role and rank, never a token fingerprint."""
    task_id = await seed_task(engine, NOW)
    response = await http.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-admin"))
    assert response.status_code == 200 and response.json()["claimed_by"] == "admin-1"


async def test_a_task_shows_everything_the_agent_needs_for_the_call(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """Shopper's name, phone and local time; items, total and restore link; payment reason; messages clicked."""
    task_id = await seed_task(engine, NOW)
    listed = (await http.get("/api/callbacks", headers=bearer("tok-ines"))).json()["tasks"]
    task = (await http.get(f"/api/callbacks/{task_id}", headers=bearer("tok-ines"))).json()
    assert listed == [task]
    assert (task["status"], task["reason"], task["due_at"]) == ("open", "payment_failed", NOW.isoformat())
    assert task["customer"] == {
        "name": "Élodie",
        "email": None,
        "phone": PHONE,
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "local_time": "2026-01-07T11:00+01:00",
    }
    assert task["cart"]["items"] == [{"name": "Vélo cargo", "quantity": 1, "unit_price": "320.00"}]
    assert (task["cart"]["value"], task["cart"]["currency"], task["cart"]["checkout_step"]) == (320.0, "EUR", "payment")
    assert task["cart"]["restore_url"] == "https://shop.example/cart/cart-1"
    assert task["payment"] == {"reason": "authentication_failed"}
    assert task["messages"] == [
        {"channel": "email", "step": "reminder", "sent_at": (NOW - timedelta(hours=1)).isoformat(), "clicked": True}
    ]


async def test_the_queue_puts_payment_failures_first_then_value_and_waits_for_later_tasks(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """Due tasks by priority (payment failures, then cart value); a task due later comes after them."""
    later = await seed_task(engine, NOW, cart_id="c-later", due_at=NOW + timedelta(hours=3))
    small = await seed_task(engine, NOW, cart_id="c-small", value="40.00", reason=TaskReason.FLOW)
    big = await seed_task(engine, NOW, cart_id="c-big", value="900.00", reason=TaskReason.FLOW)
    payment = await seed_task(engine, NOW, cart_id="c-pay", value="25.00")
    tasks = (await http.get("/api/callbacks?status=open", headers=bearer("tok-ines"))).json()["tasks"]
    assert [task["id"] for task in tasks] == [payment, big, small, later]


async def test_a_task_outside_calling_hours_falls_due_at_the_next_opening(engine: AsyncEngine) -> None:
    """Created on Saturday evening in Paris, the task is due on Monday at 09:00 local time."""
    saturday_evening = datetime(2026, 1, 10, 19, tzinfo=UTC)
    task_id = await seed_task(engine, saturday_evening)
    async with desk_client(engine, ManualClock(saturday_evening)) as http:
        task = (await http.get(f"/api/callbacks/{task_id}", headers=bearer("tok-ines"))).json()
    assert task["due_at"] == datetime(2026, 1, 12, 8, tzinfo=UTC).isoformat()


async def test_claim_release_and_conflicts_name_the_holder(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    """A claimed task is the holder's: others get 409 naming them; release gives it back to anyone."""
    task_id = await seed_task(engine, NOW)
    claimed = await http.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-ines"))
    assert claimed.status_code == 200
    assert (claimed.json()["status"], claimed.json()["claimed_by"]) == ("claimed", "Inès")
    assert claimed.json()["claimed_until"] == (NOW + timedelta(minutes=15)).isoformat()
    for action in ("claim", "release"):
        refused = await http.post(f"/api/callbacks/{task_id}/{action}", headers=bearer("tok-marc"))
        assert (refused.status_code, refused.json()["claimed_by"]) == (409, "Inès")
        assert "Inès holds this task" in refused.json()["detail"]
    done = await http.post(
        f"/api/callbacks/{task_id}/complete", json={"outcome": "no_answer"}, headers=bearer("tok-marc")
    )
    assert done.status_code == 409
    released = await http.post(f"/api/callbacks/{task_id}/release", headers=bearer("tok-ines"))
    assert (released.status_code, released.json()["status"], released.json()["claimed_by"]) == (200, "open", None)
    assert (await http.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-marc"))).status_code == 200


async def test_an_unknown_task_is_404(http: httpx.AsyncClient) -> None:
    """Every task route answers 404 for an id that does not exist."""
    for method, path, body in ROUTES[1:]:
        response = await http.request(method, path.format(id="task-nope"), json=body, headers=bearer("tok-ines"))
        assert response.status_code == 404, path


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"outcome": "hung_up"}, "not one of"),
        ({"outcome": "call_back_later"}, "needs call_back_at"),
        ({"outcome": "call_back_later", "call_back_at": "2026-01-07T09:00:00+00:00"}, "in the future"),
        ({"outcome": "call_back_later", "call_back_at": "tomorrow"}, ""),
        ({}, ""),
    ],
)
async def test_a_bad_completion_is_422_and_changes_nothing(
    engine: AsyncEngine, http: httpx.AsyncClient, body: dict[str, Any], reason: str
) -> None:
    """An unknown outcome, or call_back_later without a future time, is refused; the claim stays."""
    task_id = await seed_task(engine, NOW)
    await http.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-ines"))
    response = await http.post(f"/api/callbacks/{task_id}/complete", json=body, headers=bearer("tok-ines"))
    assert response.status_code == 422
    assert reason in json.dumps(response.json())
    task = (await http.get(f"/api/callbacks/{task_id}", headers=bearer("tok-ines"))).json()
    assert (task["status"], task["claimed_by"]) == ("claimed", "Inès")


async def test_call_back_later_reopens_the_task_at_the_chosen_time(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """The task returns to the queue, due when the shopper asked."""
    task_id = await seed_task(engine, NOW)
    await http.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-ines"))
    at = "2026-01-08T16:30:00+01:00"
    body = {"outcome": "call_back_later", "call_back_at": at, "note": "after work"}
    task = (await http.post(f"/api/callbacks/{task_id}/complete", json=body, headers=bearer("tok-ines"))).json()
    assert (task["status"], task["outcome"], task["claimed_by"]) == ("open", "call_back_later", None)
    assert datetime.fromisoformat(task["due_at"]) == datetime.fromisoformat(at)


async def test_do_not_call_records_a_phone_opt_out_and_publishes_without_the_number(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """The consent ledger gets the opt-out; callback.completed goes out with the outcome and no phone."""
    task_id = await seed_task(engine, NOW)
    await http.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-ines"))
    response = await http.post(
        f"/api/callbacks/{task_id}/complete", json={"outcome": "do_not_call"}, headers=bearer("tok-ines")
    )
    assert (response.status_code, response.json()["status"], response.json()["outcome"]) == (200, "done", "do_not_call")
    async with engine.connect() as conn:
        columns = (consent_ledger.c.customer_key, consent_ledger.c.channel, consent_ledger.c.consent)
        ledger = (await conn.execute(select(*columns))).all()
        consent = await conn.scalar(select(customers.c.consent_phone))
        events = [json.loads(p) for p in (await conn.execute(select(outbox_events.c.payload))).scalars()]
        audit = (await conn.execute(select(callback_events.c.kind, callback_events.c.agent))).all()
    # One entry for the customer, one keyed by the number's hash (so the number stays opted out as a guest).
    assert sorted((key.startswith("addr:"), channel, value) for key, channel, value in ledger) == [
        (False, "phone", False),
        (True, "phone", False),
    ]
    assert consent is False
    completed = [e for e in events if e.get("type") == "callback.completed"]
    assert [(e["task_id"], e["outcome"], e["agent"]) for e in completed] == [(task_id, "do_not_call", "Inès")]
    assert PHONE not in json.dumps(completed)
    assert [tuple(row) for row in audit] == [("created", None), ("claimed", "Inès"), ("completed", "Inès")]


async def test_wrong_number_closes_the_shoppers_other_tasks(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    """A number that is not the shopper's is not called again: their other open task closes too."""
    first = await seed_task(engine, NOW, cart_id="c1")
    async with engine.begin() as conn:
        await conn.execute(customers.delete())  # the second cart belongs to the same shopper
    second = await seed_task(engine, NOW, cart_id="c2")
    async with engine.begin() as conn:
        await conn.execute(callback_tasks.update().values(customer_key="cust-c2"))
        await conn.execute(carts.update().values(customer_key="cust-c2"))
    await http.post(f"/api/callbacks/{first}/claim", headers=bearer("tok-ines"))
    await http.post(f"/api/callbacks/{first}/complete", json={"outcome": "wrong_number"}, headers=bearer("tok-ines"))
    other = (await http.get(f"/api/callbacks/{second}", headers=bearer("tok-ines"))).json()
    assert (other["status"], other["outcome"]) == ("done", "wrong_number")


async def test_a_claim_not_completed_in_time_returns_to_the_queue(
    engine: AsyncEngine, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    """After callbacks.claim_for the task is open again; another agent takes it; the audit says it expired."""
    task_id = await seed_task(engine, NOW)
    await http.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-ines"))
    clock.advance(timedelta(minutes=14))
    assert (await http.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-marc"))).status_code == 409
    clock.advance(timedelta(minutes=2))
    listed = (await http.get("/api/callbacks?status=open", headers=bearer("tok-marc"))).json()["tasks"]
    assert [(t["id"], t["status"], t["claimed_by"]) for t in listed] == [(task_id, "open", None)]
    taken = await http.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-marc"))
    assert (taken.status_code, taken.json()["claimed_by"]) == (200, "Marc")
    late = await http.post(
        f"/api/callbacks/{task_id}/complete", json={"outcome": "no_answer"}, headers=bearer("tok-ines")
    )
    assert late.status_code == 409
    async with engine.connect() as conn:
        kinds = (await conn.execute(select(callback_events.c.kind, callback_events.c.agent))).all()
    assert ("expired", "Inès") in [tuple(row) for row in kinds]


async def test_two_agents_claiming_at_once_get_exactly_one_winner(engine: AsyncEngine, database_url: str) -> None:
    """Two replicas (own engines) claim the same tasks at the same moment: one 200 and one 409 each time."""
    clock = ManualClock(NOW)
    task_ids = [await seed_task(engine, NOW, cart_id=f"race-{n}") for n in range(5)]
    other = create_engine(database_url)
    try:
        async with desk_client(engine, clock) as one, desk_client(other, clock) as two:
            for task_id in task_ids:
                answers = await asyncio.gather(
                    one.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-ines")),
                    two.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-marc")),
                )
                assert sorted(a.status_code for a in answers) == [200, 409]
                winner = next(a for a in answers if a.status_code == 200).json()["claimed_by"]
                loser = next(a for a in answers if a.status_code == 409).json()["claimed_by"]
                assert winner == loser
    finally:
        await other.dispose()


async def test_stats_credit_an_order_after_a_reached_call_to_the_call_and_the_agent(
    engine: AsyncEngine, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    """/api/stats: one reached call, the cart ordered two hours later: revenue per outcome and per agent."""
    task_id = await seed_task(engine, NOW)
    await http.post(f"/api/callbacks/{task_id}/claim", headers=bearer("tok-ines"))
    body = {"outcome": "reached_recovered"}
    await http.post(f"/api/callbacks/{task_id}/complete", json=body, headers=bearer("tok-ines"))
    async with engine.begin() as conn:
        await conn.execute(carts.update().values(ordered_at=NOW + timedelta(hours=2), order_value=320, order_id="o-1"))
    clock.advance(timedelta(hours=3))
    assert (await http.get("/api/stats", headers=bearer("tok-ines"))).status_code == 403
    figures = (await http.get("/api/stats", headers=bearer("tok-mkt"))).json()["callbacks"]
    assert (figures["tasks"], figures["reached"], figures["reach_rate"]) == (1, 1, 1.0)
    assert figures["by_outcome"] == {"reached_recovered": 1}
    assert figures["agents"] == [
        {"agent": "Inès", "tasks": 1, "reached": 1, "reach_rate": 1.0, "orders": 1, "revenue": "320.00"}
    ]
