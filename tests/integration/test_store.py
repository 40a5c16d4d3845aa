"""The store port: one contract suite on SQLite and PostgreSQL (dedup, carts, journeys, steps, outbox)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.events import Cart
from recovery.journeys import cart_rows, journey_rows
from recovery.journeys.apply import JourneyEnd, NewJourney
from recovery.journeys.records import CartState, CustomerState
from recovery.rules import PlannedStep, Trigger
from recovery.states import ChannelName, JourneyStatus, StepStatus
from recovery.steps import step_rows
from recovery.store import outbox
from recovery.store.schema import journeys, steps

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))
LEASE = timedelta(minutes=2)


def cart_state(cart_id: str, **changes: Any) -> CartState:
    """A cart with one item seen at 11:00 UTC, idle timer armed for 11:30."""
    values: dict[str, Any] = {
        "cart_id": cart_id,
        "store": "fr",
        "customer_key": "cust-7",
        "cart": {"currency": "EUR", "value": "189.80", "items": [{"sku": "SAC", "name": "Sac à main"}]},
        "value": Decimal("189.80"),
        "currency": "EUR",
        "item_count": 1,
        "first_event_at": NOW - timedelta(hours=1),
        "last_event_at": NOW - timedelta(hours=1),
        "abandon_at": NOW - timedelta(minutes=30),
    }
    return CartState(**(values | changes))


def new_journey(
    journey_id: str = "journey-1",
    *,
    cart_id: str = "cart-1",
    step_delays: dict[str, timedelta] | None = None,
    started_at: datetime = NOW,
) -> NewJourney:
    """A cart.abandoned journey whose steps are due their delay after ``started_at``."""
    delays = step_delays if step_delays is not None else {"reminder": timedelta(0), "sms": timedelta(hours=1)}
    return NewJourney(
        journey_id=journey_id,
        cart_id=cart_id,
        flow="abandoned_cart",
        trigger=Trigger.CART_ABANDONED,
        customer_key="cust-7",
        store="fr",
        holdout=False,
        started_at=started_at,
        trigger_event_at=started_at - timedelta(minutes=30),
        context={"checkout_step": "payment"},
        steps=[
            PlannedStep(name=name, position=index, channel=ChannelName.EMAIL, due_at=started_at + delay)
            for index, (name, delay) in enumerate(delays.items())
        ],
    )


async def published(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Payloads waiting in the outbox, oldest first."""
    return [json.loads(row.payload) for row in await outbox.take(conn, 1000)]


async def step_statuses(conn: AsyncConnection, journey_id: str) -> dict[str, str]:
    """Step name to status for one journey."""
    rows = await conn.execute(select(steps.c.name, steps.c.status).where(steps.c.journey_id == journey_id))
    return {name: status for name, status in rows}


async def test_first_deliveries_returns_only_ids_never_seen(engine: AsyncEngine) -> None:
    """Ids already processed are duplicates; an id repeated in one call is new once."""
    async with engine.begin() as conn:
        assert await cart_rows.first_deliveries(conn, ["e1", "e2", "e1"]) == {"e1", "e2"}
    async with engine.begin() as conn:
        assert await cart_rows.first_deliveries(conn, ["e2", "e3", "e3", "e1"]) == {"e3"}
        assert await cart_rows.first_deliveries(conn, []) == set()


async def test_first_deliveries_are_forgotten_when_the_transaction_rolls_back(engine: AsyncEngine) -> None:
    """A batch that fails is not marked processed: its redelivery is applied."""
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await cart_rows.first_deliveries(conn, ["e1"])
            raise RuntimeError("batch failed")
    async with engine.begin() as conn:
        assert await cart_rows.first_deliveries(conn, ["e1"]) == {"e1"}


async def test_carts_round_trip_with_utc_times_and_exact_money(engine: AsyncEngine) -> None:
    """A saved cart loads back equal: aware datetimes in UTC (same instant), Decimals, JSON snapshot."""
    saved = cart_state(
        "cart-1",
        first_event_at=datetime(2026, 11, 20, 9, 0, tzinfo=PARIS),
        last_event_at=datetime(2026, 11, 20, 9, 30, 15, tzinfo=PARIS),
        checkout_step="payment",
        payment={"reason": "card_declined", "method": "card"},
        order_value=Decimal("194.70"),
        refunded_value=Decimal("0.01"),
    )
    async with engine.begin() as conn:
        await cart_rows.save_carts(conn, [saved, cart_state("cart-2")])
    async with engine.begin() as conn:
        loaded = await cart_rows.load_carts(conn, ["cart-1", "cart-2", "missing"])
    assert set(loaded) == {"cart-1", "cart-2"}
    cart = loaded["cart-1"]
    assert cart == saved
    assert cart.last_event_at.tzinfo == UTC
    assert cart.last_event_at.hour == 8
    assert isinstance(cart.value, Decimal)
    assert str(cart.order_value) == "194.70"


async def test_saving_a_cart_again_replaces_it(engine: AsyncEngine) -> None:
    """Saving is an upsert: the newest state wins, including cleared fields."""
    async with engine.begin() as conn:
        await cart_rows.save_carts(conn, [cart_state("cart-1")])
    async with engine.begin() as conn:
        await cart_rows.save_carts(conn, [cart_state("cart-1", abandon_at=None, item_count=0, value=Decimal(0))])
    async with engine.begin() as conn:
        cart = (await cart_rows.load_carts(conn, ["cart-1"]))["cart-1"]
    assert (cart.abandon_at, cart.item_count, cart.value) == (None, 0, Decimal(0))


async def test_ingest_keeps_the_stored_snapshot_and_payment_it_did_not_read(engine: AsyncEngine) -> None:
    """Ingest loads carts without their JSON documents; saving such a cart must not wipe them."""
    payment = {"reason": "card_declined", "method": "card"}
    async with engine.begin() as conn:
        await cart_rows.save_carts(conn, [cart_state("cart-1", payment=payment)])
    async with engine.begin() as conn:
        light = (await cart_rows.load_carts(conn, ["cart-1"], documents=False))["cart-1"]
        assert (light.cart, light.payment) == (None, None)
        await cart_rows.save_carts(conn, [replace(light, item_count=3)])
    async with engine.begin() as conn:
        cart = (await cart_rows.load_carts(conn, ["cart-1"]))["cart-1"]
    assert cart.item_count == 3
    assert cart.payment == payment
    assert cart.cart == cart_state("cart-1").cart


async def test_a_new_snapshot_model_is_stored_as_its_json(engine: AsyncEngine) -> None:
    """The event's Cart model is written as JSON text once and reads back as the same document."""
    snapshot = Cart(currency="EUR", value=Decimal("19.90"), items=[], restore_url="https://shop.example.com/r/1")
    async with engine.begin() as conn:
        await cart_rows.save_carts(conn, [cart_state("cart-1", cart=snapshot)])
    async with engine.begin() as conn:
        cart = (await cart_rows.load_carts(conn, ["cart-1"]))["cart-1"]
    assert cart.cart == {
        "currency": "EUR",
        "value": "19.90",
        "items": [],
        "restore_url": "https://shop.example.com/r/1",
    }


async def test_customers_round_trip(engine: AsyncEngine) -> None:
    """A saved customer loads back equal, consent flags (including None) and UTC time included."""
    saved = CustomerState(
        customer_key="cust-7",
        email="claire.martin@example.com",
        phone="+33612345678",
        first_name="Claire",
        locale="fr-FR",
        timezone="Europe/Paris",
        consent_email=True,
        consent_sms=False,
        consent_phone=None,
        updated_at=datetime(2026, 11, 20, 9, 0, tzinfo=PARIS),
    )
    async with engine.begin() as conn:
        await cart_rows.save_customers(conn, [saved])
    async with engine.begin() as conn:
        loaded = await cart_rows.load_customers(conn, ["cust-7", "nobody"])
    assert loaded == {"cust-7": saved}
    assert loaded["cust-7"].updated_at.tzinfo == UTC


async def test_a_naive_datetime_is_refused_by_the_store(engine: AsyncEngine) -> None:
    """Naive times are a bug upstream: the store refuses them instead of guessing a zone."""
    with pytest.raises(StatementError, match="naive datetime"):
        async with engine.begin() as conn:
            await cart_rows.save_carts(conn, [cart_state("cart-1", abandon_at=datetime(2026, 11, 20, 12))])


async def test_claim_idle_carts_returns_only_due_unordered_carts_and_clears_their_timers(
    engine: AsyncEngine,
) -> None:
    """Due carts are claimed once with their timer cleared; future timers and ordered carts are left."""
    async with engine.begin() as conn:
        await cart_rows.save_carts(
            conn,
            [
                cart_state("due-early", abandon_at=NOW - timedelta(minutes=5)),
                cart_state("due-now", abandon_at=NOW),
                cart_state("later", abandon_at=NOW + timedelta(seconds=1)),
                cart_state("no-timer", abandon_at=None),
                cart_state("ordered", abandon_at=NOW - timedelta(minutes=5), ordered_at=NOW - timedelta(minutes=1)),
            ],
        )
    async with engine.begin() as conn:
        claimed = await cart_rows.claim_idle_carts(conn, NOW, limit=10)
    assert [cart.cart_id for cart in claimed] == ["due-early", "due-now"]
    async with engine.begin() as conn:
        assert await cart_rows.claim_idle_carts(conn, NOW, limit=10) == []
        after = await cart_rows.load_carts(conn, ["due-early", "due-now", "later", "ordered"])
    assert [(after[c].abandon_at, after[c].abandoned_at) for c in ("due-early", "due-now")] == [(None, NOW)] * 2
    assert after["later"].abandon_at == NOW + timedelta(seconds=1)
    assert after["ordered"].abandoned_at is None


async def test_claim_idle_carts_respects_the_limit_oldest_first(engine: AsyncEngine) -> None:
    """With more due carts than the limit, the longest-idle ones go first and the rest wait."""
    async with engine.begin() as conn:
        await cart_rows.save_carts(
            conn,
            [cart_state(f"cart-{minutes}", abandon_at=NOW - timedelta(minutes=minutes)) for minutes in (1, 9, 5)],
        )
    async with engine.begin() as conn:
        assert [c.cart_id for c in await cart_rows.claim_idle_carts(conn, NOW, limit=2)] == [
            "cart-9",
            "cart-5",
        ]
    async with engine.begin() as conn:
        assert [c.cart_id for c in await cart_rows.claim_idle_carts(conn, NOW, limit=2)] == ["cart-1"]


async def test_creating_a_journey_stores_it_with_pending_steps_and_publishes_step_scheduled(
    engine: AsyncEngine,
) -> None:
    """A new journey is active with one pending step per planned step, each announced on the outbox."""
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey()], NOW)
    async with engine.begin() as conn:
        assert await step_statuses(conn, "journey-1") == {"reminder": "pending", "sms": "pending"}
        [active] = await journey_rows.load_active(conn, ["cart-1"])
        events = await published(conn)
    assert (active.journey_id, active.trigger, active.messages_sent) == (
        "journey-1",
        Trigger.CART_ABANDONED,
        0,
    )
    assert [(e["type"], e["step"], e["journey_id"], e["cart_id"], e["flow"]) for e in events] == [
        ("step.scheduled", "reminder", "journey-1", "cart-1", "abandoned_cart"),
        ("step.scheduled", "sms", "journey-1", "cart-1", "abandoned_cart"),
    ]


async def test_creating_the_same_journey_twice_keeps_one_journey_and_its_steps(engine: AsyncEngine) -> None:
    """Journey ids are deterministic: a repeated create adds no journey and no duplicate step."""
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey()], NOW)
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey(started_at=NOW + timedelta(minutes=1))], NOW)
    async with engine.begin() as conn:
        journey_count = len((await conn.execute(select(journeys.c.journey_id))).all())
        step_count = len((await conn.execute(select(steps.c.step_id))).all())
        [journey] = await journey_rows.load_active(conn, ["cart-1"])
    assert (journey_count, step_count) == (1, 2)
    assert journey.trigger_event_at == NOW - timedelta(minutes=30)


async def test_creating_the_same_journey_twice_publishes_step_scheduled_once(engine: AsyncEngine) -> None:
    """The second, no-op create announces nothing new on recovery.messages."""
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey()], NOW)
        await journey_rows.create(conn, [new_journey()], NOW)
    async with engine.begin() as conn:
        assert len(await published(conn)) == 2


@pytest.mark.parametrize(
    ("status", "revenue", "tail"),
    [
        # journey.converted comes from attribution, once per attributed order (test_conversion_events.py).
        pytest.param(JourneyStatus.CONVERTED, Decimal("194.70"), [], id="converted"),
        pytest.param(JourneyStatus.CANCELLED, None, [], id="cancelled"),
    ],
)
async def test_ending_a_journey_cancels_only_its_pending_steps(
    engine: AsyncEngine, status: JourneyStatus, revenue: Decimal | None, tail: list[tuple[str, None]]
) -> None:
    """Ending closes the journey, cancels pending steps (a claimed one runs on) and publishes each change."""
    journey = new_journey(step_delays={"reminder": timedelta(0), "sms": timedelta(hours=1), "call": timedelta(hours=2)})
    other = new_journey("journey-2", cart_id="cart-2", step_delays={"reminder": timedelta(hours=1)})
    async with engine.begin() as conn:
        await journey_rows.create(conn, [journey, other], NOW)
        claimed = await step_rows.claim_due(conn, now=NOW, worker="w1", limit=1, lease=LEASE)
        await outbox.remove(conn, [row.id for row in await outbox.take(conn, 1000)])
    assert [step.step_id for step in claimed] == ["journey-1:reminder"]
    end = JourneyEnd(
        journey_id="journey-1",
        cart_id="cart-1",
        flow="abandoned_cart",
        status=status,
        reason="order_completed",
        revenue=revenue,
    )
    async with engine.begin() as conn:
        await journey_rows.end(conn, [end], NOW + timedelta(minutes=5))
    async with engine.begin() as conn:
        assert await step_statuses(conn, "journey-1") == {
            "reminder": "claimed",
            "sms": "cancelled",
            "call": "cancelled",
        }
        assert await step_statuses(conn, "journey-2") == {"reminder": "pending"}
        row = (await conn.execute(select(journeys).where(journeys.c.journey_id == "journey-1"))).mappings().one()
        assert [j.journey_id for j in await journey_rows.load_active(conn, ["cart-1", "cart-2"])] == ["journey-2"]
        events = await published(conn)
    assert (row["status"], row["end_reason"], row["ended_at"]) == (
        status.value,
        "order_completed",
        NOW + timedelta(minutes=5),
    )
    cancelled = sorted((e["type"], e["step"]) for e in events if e["type"] == "step.cancelled")
    assert cancelled == [("step.cancelled", "call"), ("step.cancelled", "sms")]
    assert all(e["reason"] == "order_completed" for e in events if e["type"] == "step.cancelled")
    assert [(e["type"], e["step"]) for e in events if e["type"] != "step.cancelled"] == tail


async def test_ending_an_ended_journey_does_not_change_its_outcome(engine: AsyncEngine) -> None:
    """Only an active journey can end: a later cancellation leaves a converted journey converted."""
    converted = JourneyEnd(
        journey_id="journey-1",
        cart_id="cart-1",
        flow="abandoned_cart",
        status=JourneyStatus.CONVERTED,
        reason="order_completed",
        revenue=Decimal(10),
    )
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey()], NOW)
        await journey_rows.end(conn, [converted], NOW)
        await journey_rows.end(
            conn,
            [
                JourneyEnd(
                    journey_id="journey-1",
                    cart_id="cart-1",
                    flow="abandoned_cart",
                    status=JourneyStatus.CANCELLED,
                    reason="cart_activity",
                )
            ],
            NOW + timedelta(minutes=1),
        )
        status = await conn.scalar(select(journeys.c.status).where(journeys.c.journey_id == "journey-1"))
    assert status == "converted"


async def test_a_journey_that_already_ended_is_not_reported_converted(engine: AsyncEngine) -> None:
    """Ending a journey that is no longer active publishes no journey.converted."""
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey(step_delays={"reminder": timedelta(0)})], NOW)
        await step_rows.set_step(conn, "journey-1:reminder", StepStatus.SENT, NOW)
        assert await step_rows.complete_if_done(conn, "journey-1", NOW) is True
        await outbox.remove(conn, [row.id for row in await outbox.take(conn, 1000)])
        await journey_rows.end(
            conn,
            [
                JourneyEnd(
                    journey_id="journey-1",
                    cart_id="cart-1",
                    flow="abandoned_cart",
                    status=JourneyStatus.CONVERTED,
                    reason="order_completed",
                    revenue=Decimal(10),
                )
            ],
            NOW + timedelta(minutes=1),
        )
        status = await conn.scalar(select(journeys.c.status).where(journeys.c.journey_id == "journey-1"))
        events = await published(conn)
    assert status == "completed"
    assert [e["type"] for e in events] == []


async def test_last_entries_give_the_latest_start_per_flow_and_customer(engine: AsyncEngine) -> None:
    """Re-entry checks read when each customer last entered each flow."""
    async with engine.begin() as conn:
        await journey_rows.create(
            conn,
            [
                new_journey("j-old", started_at=NOW - timedelta(days=3)),
                new_journey("j-new", cart_id="cart-2"),
            ],
            NOW,
        )
        entries = await journey_rows.load_last_entries(conn, ["cust-7", "nobody"])
    assert entries == {("abandoned_cart", "cust-7"): NOW}


async def test_claim_due_claims_each_due_step_once(engine: AsyncEngine) -> None:
    """Due pending steps are claimed in due order; a second claim at the same time gets nothing."""
    async with engine.begin() as conn:
        await journey_rows.create(
            conn,
            [
                new_journey(
                    step_delays={
                        "second": timedelta(0),
                        "first": -timedelta(minutes=1),
                        "future": timedelta(seconds=1),
                    }
                )
            ],
            NOW,
        )
    async with engine.begin() as conn:
        claimed = await step_rows.claim_due(conn, now=NOW, worker="w1", limit=10, lease=LEASE)
    assert [(step.name, step.due_at, step.attempts) for step in claimed] == [
        ("first", NOW - timedelta(minutes=1), 0),
        ("second", NOW, 0),
    ]
    assert {step.step_id for step in claimed} == {"journey-1:first", "journey-1:second"}
    async with engine.begin() as conn:
        assert await step_rows.claim_due(conn, now=NOW, worker="w2", limit=10, lease=LEASE) == []
        assert await step_statuses(conn, "journey-1") == {
            "first": "claimed",
            "second": "claimed",
            "future": "pending",
        }


async def test_claim_due_reclaims_a_step_whose_lease_expired(engine: AsyncEngine) -> None:
    """A step claimed by a worker that vanished is claimed again once its lease has run out."""
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey(step_delays={"reminder": timedelta(0)})], NOW)
        await step_rows.claim_due(conn, now=NOW, worker="crashed", limit=10, lease=LEASE)
    async with engine.begin() as conn:
        assert (
            await step_rows.claim_due(conn, now=NOW + LEASE - timedelta(seconds=1), worker="w2", limit=10, lease=LEASE)
            == []
        )
        [again] = await step_rows.claim_due(conn, now=NOW + LEASE, worker="w2", limit=10, lease=LEASE)
    assert again.step_id == "journey-1:reminder"


async def test_a_finished_step_is_never_claimed_again(engine: AsyncEngine) -> None:
    """Sent, skipped and cancelled steps stay put however much time passes."""
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey(step_delays={"a": timedelta(0), "b": timedelta(0)})], NOW)
        await step_rows.claim_due(conn, now=NOW, worker="w1", limit=10, lease=LEASE)
        await step_rows.set_step(conn, "journey-1:a", StepStatus.SENT, NOW)
        await step_rows.set_step(conn, "journey-1:b", StepStatus.SKIPPED, NOW, reason="no_consent")
    async with engine.begin() as conn:
        assert await step_rows.claim_due(conn, now=NOW + timedelta(days=1), worker="w2", limit=10, lease=LEASE) == []


async def test_outbox_take_and_remove_round_trip(engine: AsyncEngine) -> None:
    """Taken events come oldest first up to the limit; removed ones are gone, the rest remain."""
    rows = [
        {"topic_role": "messages", "key": f"cart-{i}", "payload": f'{{"n": {i}}}', "created_at": NOW} for i in range(3)
    ]
    rows.append({"topic_role": "dead_letter", "key": None, "payload": "{}", "created_at": NOW})
    async with engine.begin() as conn:
        await outbox.enqueue(conn, rows)
    async with engine.begin() as conn:
        first = await outbox.take(conn, 2)
        assert [(e.topic_role, e.key, e.payload) for e in first] == [
            ("messages", "cart-0", '{"n": 0}'),
            ("messages", "cart-1", '{"n": 1}'),
        ]
        await outbox.remove(conn, [e.id for e in first])
    async with engine.begin() as conn:
        rest = await outbox.take(conn, 10)
        assert [(e.topic_role, e.key) for e in rest] == [("messages", "cart-2"), ("dead_letter", None)]
        await outbox.remove(conn, [e.id for e in rest])
        await outbox.remove(conn, [])
        assert await outbox.take(conn, 10) == []


async def test_concurrent_claims_on_postgresql_never_share_a_step(postgres_engine: AsyncEngine) -> None:
    """Two open transactions claiming at once get disjoint steps (FOR UPDATE SKIP LOCKED), none lost."""
    delays = {f"s{i}": timedelta(seconds=-i) for i in range(6)}
    async with postgres_engine.begin() as conn:
        await journey_rows.create(conn, [new_journey(step_delays=delays)], NOW)
    async with postgres_engine.connect() as first, postgres_engine.connect() as second:
        await first.begin()
        await second.begin()
        mine = await step_rows.claim_due(first, now=NOW, worker="w1", limit=4, lease=LEASE)
        theirs = await step_rows.claim_due(second, now=NOW, worker="w2", limit=10, lease=LEASE)
        await first.commit()
        await second.commit()
    assert len(mine) == 4
    assert {s.step_id for s in mine}.isdisjoint({s.step_id for s in theirs})
    assert {s.name for s in mine} | {s.name for s in theirs} == set(delays)


async def test_concurrent_idle_cart_claims_on_postgresql_never_share_a_cart(
    postgres_engine: AsyncEngine,
) -> None:
    """Two replicas sweeping idle carts at once never start the same cart's journey twice."""
    async with postgres_engine.begin() as conn:
        await cart_rows.save_carts(conn, [cart_state(f"cart-{i}") for i in range(5)])
    async with postgres_engine.connect() as first, postgres_engine.connect() as second:
        await first.begin()
        await second.begin()
        mine = await cart_rows.claim_idle_carts(first, NOW, limit=3)
        theirs = await cart_rows.claim_idle_carts(second, NOW, limit=10)
        await first.commit()
        await second.commit()
    assert {c.cart_id for c in mine}.isdisjoint({c.cart_id for c in theirs})
    assert len(mine) + len(theirs) == 5


async def test_a_long_step_name_fits_on_postgresql(postgres_engine: AsyncEngine) -> None:
    """A flow step name of 40 characters (flows allow 128) can be scheduled on PostgreSQL."""
    journey = new_journey("0123456789abcdef0123456789abcdef", step_delays={"x" * 40: timedelta(0)})
    async with postgres_engine.begin() as conn:
        await journey_rows.create(conn, [journey], NOW)
        assert await step_statuses(conn, journey.journey_id) == {"x" * 40: "pending"}
