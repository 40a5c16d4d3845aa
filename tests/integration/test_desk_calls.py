"""Working a call from the task alone (SQLite and PostgreSQL): the shopper's history, retries, the link, capacity."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api import create_app
from recovery.clock import ManualClock
from recovery.desk import claim_rows, task_rows
from recovery.desk.policy import DeskPolicy
from recovery.desk.queue import TaskReason
from recovery.desk.task_rows import NewTask
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.store.schema import callback_events, callback_tasks, customers, outbox_events, steps
from tests.fakes.desk import EMAIL, seed_shopper_context, seed_task

# Wednesday 7 January 2026, 10:00 UTC = 11:00 in Paris: inside the calling hours.
NOW = datetime(2026, 1, 7, 10, tzinfo=UTC)
TOKENS: dict[str, Any] = {"tok-ines": {"role": "agent", "name": "Inès"}, "tok-marc": {"role": "agent", "name": "Marc"}}
INES, MARC = {"Authorization": "Bearer tok-ines"}, {"Authorization": "Bearer tok-marc"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def http(engine: AsyncEngine, clock: ManualClock, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    outbox = {"transport": "outbox", "outbox_dir": tmp_path / "outbox"}  # both channels can carry a link
    settings = Settings(security={"link_secret": "s", "api_tokens": TOKENS}, channels=outbox)
    app = create_app(engine=engine, settings=settings, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk.test") as client:
        yield client


async def test_the_task_shows_the_shoppers_history_email_store_offer_and_why_they_left(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """A shopper with an earlier order and a payment failure: the Task carries what the agent needs to know."""
    task_id = await seed_task(engine, NOW)
    await seed_shopper_context(engine, NOW)
    task = (await http.get(f"/api/callbacks/{task_id}", headers=INES)).json()
    assert task["customer"]["email"] == EMAIL
    assert task["history"] == {
        "orders": 1,
        "revenue": "60.00",
        "currency": "EUR",
        "last_order_at": (NOW - timedelta(days=30)).isoformat(),
    }
    assert task["offer"] == {
        "code": "CART-7KQ2MZ4H",
        "percent": 10,
        "expires_at": (NOW + timedelta(days=2)).isoformat(),
    }
    assert task["feedback"] == "shipping_cost"
    assert task["store"] == {"id": "default", "name": "default"}  # no stores settings: named by its id
    assert (task["attempts"], task["max_attempts"], task["notes"]) == (0, 3, [])
    listed = (await http.get("/api/callbacks", headers=INES)).json()["tasks"]
    assert listed == [task]


async def test_a_first_time_shopper_has_an_empty_history_and_no_offer(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """Nothing seen before: zero orders, no offer, no feedback (the cart called about is not history)."""
    task_id = await seed_task(engine, NOW)
    task = (await http.get(f"/api/callbacks/{task_id}", headers=INES)).json()
    assert task["history"] == {"orders": 0, "revenue": "0.00", "currency": None, "last_order_at": None}
    assert (task["offer"], task["feedback"]) == (None, None)


async def complete(http: httpx.AsyncClient, task_id: str, outcome: str, note: str | None = None) -> dict[str, Any]:
    assert (await http.post(f"/api/callbacks/{task_id}/claim", headers=INES)).status_code == 200
    body = {"outcome": outcome} | ({"note": note} if note else {})
    answer = await http.post(f"/api/callbacks/{task_id}/complete", json=body, headers=INES)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_no_answer_reopens_the_task_twice_then_closes_it_keeping_every_note(
    engine: AsyncEngine, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Three unanswered calls: open again 2 h later each time (calling hours), then done with no_answer."""
    task_id = await seed_task(engine, NOW)
    first = await complete(http, task_id, "no_answer", "messagerie")
    assert (first["status"], first["outcome"], first["attempts"]) == ("open", "no_answer", 1)
    assert first["due_at"] == (NOW + timedelta(hours=2)).isoformat()
    clock.advance(timedelta(hours=2))
    second = await complete(http, task_id, "no_answer", "sonne dans le vide")
    assert (second["status"], second["attempts"]) == ("open", 2)
    assert second["due_at"] == (NOW + timedelta(hours=4)).isoformat()
    clock.advance(timedelta(hours=2))
    third = await complete(http, task_id, "no_answer")
    assert (third["status"], third["outcome"], third["attempts"]) == ("done", "no_answer", 3)
    assert [(n["at"], n["by"], n["outcome"], n["note"]) for n in third["notes"]] == [
        (NOW.isoformat(), "Inès", "no_answer", "messagerie"),
        ((NOW + timedelta(hours=2)).isoformat(), "Inès", "no_answer", "sonne dans le vide"),
        ((NOW + timedelta(hours=4)).isoformat(), "Inès", "no_answer", None),
    ]


async def test_a_no_answer_late_in_the_day_comes_back_at_the_next_opening(
    engine: AsyncEngine, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    """17:30 UTC (18:30 in Paris) + 2 h is after closing: the task is due at 09:00 Paris the next morning."""
    clock.advance(timedelta(hours=7, minutes=30))
    task_id = await seed_task(engine, clock.now())
    reopened = await complete(http, task_id, "no_answer")
    assert (reopened["status"], reopened["due_at"]) == ("open", datetime(2026, 1, 8, 8, tzinfo=UTC).isoformat())


async def test_the_queue_ranks_a_reopened_task_below_the_tasks_due_now(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """A reopened no_answer waits for its time: due tasks come first, by priority then due time."""
    retried = await seed_task(engine, NOW, cart_id="c-retry", value="900.00")
    small = await seed_task(engine, NOW, cart_id="c-small", value="40.00")
    await complete(http, retried, "no_answer")
    listed = (await http.get("/api/callbacks", headers=INES)).json()["tasks"]
    assert [task["id"] for task in listed] == [small, retried]


async def test_send_link_is_for_the_holder_and_needs_consent_and_a_contact(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """409 for an agent who does not hold the task; 422 without SMS consent or without an email address."""
    task_id = await seed_task(engine, NOW)
    url = f"/api/callbacks/{task_id}/send-link"
    assert (await http.post(url, json={"channel": "sms"}, headers=INES)).status_code == 409  # nobody holds it
    await http.post(f"/api/callbacks/{task_id}/claim", headers=INES)
    refused = await http.post(url, json={"channel": "sms"}, headers=MARC)
    assert (refused.status_code, refused.json()["claimed_by"]) == (409, "Inès")
    no_consent = await http.post(url, json={"channel": "sms"}, headers=INES)
    assert no_consent.status_code == 422 and "consent" in no_consent.json()["detail"]
    no_email = await http.post(url, json={"channel": "email"}, headers=INES)
    assert no_email.status_code == 422 and "email" in no_email.json()["detail"]
    assert (await http.post(url, json={"channel": "fax"}, headers=INES)).status_code == 422
    async with engine.connect() as conn:
        assert (await conn.execute(select(steps))).all() == []  # nothing was scheduled


async def test_send_link_schedules_the_link_on_the_journey_due_now(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """202: a step on the task's journey, due now, for the dispatcher; the audit names the agent."""
    task_id = await seed_task(engine, NOW)
    await seed_shopper_context(engine, NOW)
    await http.post(f"/api/callbacks/{task_id}/claim", headers=INES)
    sent = await http.post(f"/api/callbacks/{task_id}/send-link", json={"channel": "sms"}, headers=INES)
    assert sent.status_code == 202
    again = await http.post(f"/api/callbacks/{task_id}/send-link", json={"channel": "email"}, headers=INES)
    assert again.status_code == 202
    async with engine.connect() as conn:
        scheduled = (await conn.execute(select(steps.c.name, steps.c.channel, steps.c.due_at, steps.c.status))).all()
        audit = (await conn.execute(select(callback_events.c.kind, callback_events.c.agent))).all()
    assert sorted(tuple(row) for row in scheduled) == [
        ("agent_link_email_2", "email", NOW, "pending"),
        ("agent_link_sms_1", "sms", NOW, "pending"),
    ]
    assert [tuple(row) for row in audit].count(("link_sent", "Inès")) == 2


async def test_capacity_one_per_hour_spreads_three_tasks_over_three_hours(engine: AsyncEngine) -> None:
    """callbacks.per_hour = 1: three payment failures at 10:00 UTC are due at 10:00, 11:00 and 12:00."""
    policy = DeskPolicy(per_hour=1)
    due: list[datetime] = []
    for n in range(3):
        await seed_task(engine, NOW, cart_id=f"cap-{n}", due_at=NOW + timedelta(days=9))  # outside the window
        async with engine.begin() as conn:
            task_id, _ = await task_rows.create_task(
                conn,
                NewTask(
                    message_id=f"j-cap-{n}:call",
                    journey_id=f"j-cap-{n}",
                    cart_id=f"cap-{n}",
                    customer_key=f"cust-cap-{n}",
                    flow="payment_failed",
                    step="call",
                    channel=ChannelName.CALLBACK,
                    reason=TaskReason.PAYMENT_FAILED,
                ),
                NOW,
                policy=policy,
            )
            due_at = await conn.scalar(select(callback_tasks.c.due_at).where(callback_tasks.c.task_id == task_id))
            assert due_at is not None
            due.append(due_at)
    assert [moment.astimezone(UTC) for moment in due] == [NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2)]


async def test_an_expired_claim_is_back_in_the_queue_and_counted_in_metrics(
    engine: AsyncEngine, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Past callbacks.claim_for the task is open again for everyone; /metrics counts the expired claim."""
    task_id = await seed_task(engine, NOW)
    await http.post(f"/api/callbacks/{task_id}/claim", headers=INES)
    clock.advance(timedelta(minutes=16))
    listed = (await http.get("/api/callbacks", headers=MARC)).json()["tasks"]
    assert [(t["id"], t["status"]) for t in listed] == [(task_id, "open")]
    async with engine.connect() as conn:
        row = (await conn.execute(select(callback_tasks).where(callback_tasks.c.task_id == task_id))).mappings().one()
    assert (row["status"], row["claimed_by"]) == ("open", None)  # in the table, not only in the listing
    metrics = (await http.get("/metrics")).text
    assert "recovery_callback_claims_expired_total 1.0" in metrics
    async with engine.connect() as conn:
        phones = (await conn.execute(select(customers.c.phone))).all()
    assert phones  # the seeded shopper is still there: expiry touches only the task


async def test_the_schedulers_sweep_returns_a_lapsed_claim_and_publishes_the_open_task(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """The sweep the scheduler runs every poll: the task is open again at once, on recovery.callback-tasks too."""
    task_id = await seed_task(engine, NOW)
    await http.post(f"/api/callbacks/{task_id}/claim", headers=INES)
    async with engine.begin() as conn:
        assert await claim_rows.expire_claims(conn, NOW + timedelta(minutes=14)) == 0  # still Inès's
        assert await claim_rows.expire_claims(conn, NOW + timedelta(minutes=16)) == 1
        payloads = (await conn.execute(select(outbox_events.c.payload).order_by(outbox_events.c.id.desc()))).scalars()
        latest = json.loads(next(iter(payloads)))
    assert (latest["id"], latest["status"], latest["claimed_by"]) == (task_id, "open", None)


async def test_send_link_on_a_channel_without_provider_settings_is_refused(
    engine: AsyncEngine, clock: ManualClock
) -> None:
    """Providers transport without Twilio settings: 422 naming the channel, nothing scheduled."""
    task_id = await seed_task(engine, NOW)
    await seed_shopper_context(engine, NOW)
    settings = Settings(security={"link_secret": "s", "api_tokens": TOKENS}, channels={"transport": "providers"})
    app = create_app(engine=engine, settings=settings, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk.test") as http:
        await http.post(f"/api/callbacks/{task_id}/claim", headers=INES)
        refused = await http.post(f"/api/callbacks/{task_id}/send-link", json={"channel": "sms"}, headers=INES)
    assert refused.status_code == 422 and "sms channel is not configured" in refused.json()["detail"]
    async with engine.connect() as conn:
        assert (await conn.execute(select(steps))).all() == []
