"""``insert_rows``: ingest's many-row inserts as one statement, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.states import PublishedType
from recovery.store import outbox
from recovery.store.schema import journeys, steps
from recovery.store.sql import insert_rows

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def journey_row(journey_id: str) -> dict[str, object]:
    return {
        "journey_id": journey_id,
        "cart_id": "cart-1",
        "flow": "payment_failed",
        "trigger": "payment.failed",
        "customer_key": "cust-1",
        "store": "fr",
        "status": "active",
        "started_at": NOW,
        "trigger_event_at": NOW,
        "context": {"payment": {"reason": "card_declined"}},
    }


async def test_it_returns_the_keys_it_inserted_and_skips_the_existing_ones(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await insert_rows(conn, journeys, [journey_row("j1"), journey_row("j2")], returning="journey_id")
        again = await insert_rows(conn, journeys, [journey_row("j2"), journey_row("j3")], returning="journey_id")
        stored = (await conn.execute(select(journeys.c.journey_id).order_by(journeys.c.journey_id))).scalars().all()
    assert (first, again, stored) == ({"j1", "j2"}, {"j3"}, ["j1", "j2", "j3"])


async def test_left_out_columns_get_their_defaults_and_documents_their_json(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await insert_rows(conn, journeys, [journey_row("j1")])
        row = (
            await conn.execute(
                select(journeys.c.messages_sent, journeys.c.clicked, journeys.c.holdout, journeys.c.context)
            )
        ).one()
    assert tuple(row) == (0, False, False, {"payment": {"reason": "card_declined"}})


async def test_rows_naming_different_columns_are_refused_with_the_table_named(engine: AsyncEngine) -> None:
    short = {"step_id": "j1:sms", "journey_id": "j1"}
    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="steps"):
            await insert_rows(conn, steps, [journey_row("j1"), short])


async def test_outbox_events_keep_the_order_they_were_enqueued_in(engine: AsyncEngine) -> None:
    events = [
        outbox.message_event(
            type_=PublishedType.STEP_SCHEDULED, now=NOW, cart_id=f"cart-{n}", journey_id=f"j{n}", flow="f", step="s"
        )
        for n in range(300)
    ]
    async with engine.begin() as conn:
        await outbox.enqueue(conn, events)
        taken = await outbox.take(conn, 1000)
    assert [json.loads(event.payload)["cart_id"] for event in taken] == [f"cart-{n}" for n in range(300)]
