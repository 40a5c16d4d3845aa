"""Report figures and order attribution on SQLite and PostgreSQL, from rows seeded straight into the store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from typer import Typer
from typer.testing import CliRunner

from recovery.attribution.conversion_rows import record_order, record_refund
from recovery.attribution.credit import AttributionModel
from recovery.attribution.queries import build_stats
from recovery.cli.report import report
from recovery.states import ConversionKind
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head
from recovery.store.schema import (
    callback_tasks,
    carts,
    clicks,
    conversions,
    feedback_answers,
    journeys,
    messages,
    steps,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(hours=26)  # journeys' trigger
T0 = STARTED + timedelta(hours=1)  # first reminders leave
WEEK = NOW - timedelta(days=7)
MODEL = AttributionModel.LAST_CLICK


class Seed:
    """Inserts carts, journeys, steps, messages and clicks with defaults that keep tests short."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _cart_of(self, journey_id: str) -> str:
        found: str | None = await self.conn.scalar(
            select(journeys.c.cart_id).where(journeys.c.journey_id == journey_id)
        )
        assert found is not None, f"seed journey {journey_id} first"
        return found

    async def cart(
        self,
        cart_id: str,
        *,
        step: str | None,
        abandoned: bool = True,
        ordered_at: datetime | None = None,
        value: str = "0",
        refunded: str | None = None,
        payment_reason: str | None = None,
        customer: str | None = None,
        first_event_at: datetime = NOW - timedelta(days=2),
        store: str = "fr",
        currency: str = "EUR",
    ) -> None:
        await self.conn.execute(
            insert(carts).values(
                cart_id=cart_id,
                store=store,
                customer_key=customer or f"cust-{cart_id}",
                value=Decimal(value),
                currency=currency,
                item_count=1,
                checkout_step=step,
                payment={"reason": payment_reason, "method": "card"} if payment_reason else None,
                first_event_at=first_event_at,
                last_event_at=first_event_at,
                abandoned_at=first_event_at + timedelta(minutes=30) if abandoned else None,
                ordered_at=ordered_at,
                order_id=f"order-{cart_id}" if ordered_at else None,
                order_value=Decimal(value) if ordered_at else None,
                refunded_value=Decimal(refunded) if refunded else None,
            )
        )

    async def journey(
        self,
        journey_id: str,
        cart_id: str,
        *,
        flow: str = "abandoned_cart",
        holdout: bool = False,
        started_at: datetime = STARTED,
        status: str = "active",
    ) -> None:
        await self.conn.execute(
            insert(journeys).values(
                journey_id=journey_id,
                cart_id=cart_id,
                flow=flow,
                trigger="payment.failed" if flow == "payment_failed" else "cart.abandoned",
                customer_key=f"cust-{cart_id}",
                store="fr",
                status=status,
                holdout=holdout,
                started_at=started_at,
                trigger_event_at=started_at,
                messages_sent=0,
                clicked=False,
            )
        )

    async def step(
        self, journey_id: str, name: str, status: str, *, reason: str | None = None, channel: str = "email"
    ) -> None:
        cart_id = await self._cart_of(journey_id)
        await self.conn.execute(
            insert(steps).values(
                step_id=f"{journey_id}:{name}",
                journey_id=journey_id,
                cart_id=cart_id,
                name=name,
                position=0,
                channel=channel,
                due_at=T0,
                status=status,
                attempts=0,
                reason=reason,
                updated_at=T0,
            )
        )

    async def sent(self, journey_id: str, step: str, channel: str, sent_at: datetime, *, state: str = "sent") -> str:
        """A step sent as a message; returns the message id."""
        await self.step(journey_id, step, "sent", channel=channel)
        row = (
            await self.conn.execute(
                select(journeys.c.cart_id, journeys.c.flow).where(journeys.c.journey_id == journey_id)
            )
        ).one()
        message_id = f"{journey_id}:{step}"
        await self.conn.execute(
            insert(messages).values(
                message_id=message_id,
                journey_id=journey_id,
                step_id=message_id,
                cart_id=row.cart_id,
                customer_key=f"cust-{row.cart_id}",
                flow=row.flow,
                step=step,
                channel=channel,
                template=f"tpl_{step}" if channel != "callback" else None,
                state=state,
                attempts=1,
                created_at=sent_at,
                sent_at=sent_at if state in ("sent", "delivered") else None,
                updated_at=sent_at,
            )
        )
        return message_id

    async def click(self, message_id: str, at: datetime, *, user_agent_class: str = "mobile") -> None:
        journey_id, _ = message_id.split(":")
        cart_id = await self._cart_of(journey_id)
        await self.conn.execute(
            insert(clicks).values(
                message_id=message_id,
                journey_id=journey_id,
                cart_id=cart_id,
                clicked_at=at,
                user_agent_class=user_agent_class,
            )
        )

    async def callback_task(self, journey_id: str, status: str, outcome: str | None = None) -> None:
        await self.conn.execute(
            insert(callback_tasks).values(
                task_id=f"task-{journey_id}",
                message_id=f"{journey_id}:call_me",
                journey_id=journey_id,
                cart_id="x",
                customer_key="x",
                flow="abandoned_cart",
                step="call_me",
                status=status,
                outcome=outcome,
                created_at=T0,
                updated_at=T0,
            )
        )

    async def order(self, cart_id: str, value: str, at: datetime) -> Any:
        return await record_order(
            self.conn,
            order_id=f"order-{cart_id}",
            cart_id=cart_id,
            value=Decimal(value),
            currency="EUR",
            occurred_at=at,
            model=MODEL,
            click_window=timedelta(days=5),
            send_window=timedelta(hours=24),
        )


@pytest.fixture
async def shop(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A shop's week: 8 carts, treated and holdout journeys, messages, a click, orders and a refund.

    c1 clicked its email and bought (100, 30 refunded); c2 got an email then an SMS and bought without a
    click (50); c3 got an email and did not buy; c4 and c5 are holdout, c5 bought anyway (80); c6 bought
    with no journey (40, same shopper as c1); c7 is a month old; c8 failed to pay and got an SMS.
    """
    async with engine.begin() as conn:
        seed = Seed(conn)
        await seed.cart(
            "c1",
            step="review",
            ordered_at=T0 + timedelta(hours=2),
            value="100.00",
            refunded="30.00",
            customer="shopper-1",
        )
        await seed.cart(
            "c2", step="payment", ordered_at=T0 + timedelta(hours=4), value="50.00", payment_reason="card_declined"
        )
        await seed.cart("c3", step="shipping")
        await seed.cart("c4", step=None)
        await seed.cart("c5", step="address", ordered_at=T0 + timedelta(hours=5), value="80.00")
        await seed.cart("c6", step="account", abandoned=False, ordered_at=T0, value="40.00", customer="shopper-1")
        await seed.cart("c7", step=None, first_event_at=NOW - timedelta(days=30))
        await seed.cart("c8", step="payment", abandoned=False, payment_reason="insufficient_funds")

        await seed.journey("j1", "c1", status="converted")
        m1 = await seed.sent("j1", "reminder", "email", T0)
        await seed.step("j1", "sms_offer", "cancelled", reason="order_completed")
        await seed.click(m1, T0 + timedelta(hours=1))
        await seed.journey("j2", "c2", status="converted")
        await seed.sent("j2", "reminder", "email", T0)
        await seed.sent("j2", "sms_offer", "sms", T0 + timedelta(hours=3))
        await seed.journey("j3", "c3", status="completed")
        await seed.sent("j3", "reminder", "email", T0)
        await seed.step("j3", "sms_offer", "skipped", reason="no_consent")
        await seed.step("j3", "call_me", "skipped", reason="condition_false")
        await seed.journey("j4", "c4", holdout=True, status="completed")
        await seed.step("j4", "reminder", "skipped", reason="holdout")
        await seed.step("j4", "sms_offer", "skipped", reason="holdout")
        await seed.journey("j5", "c5", holdout=True, status="cancelled")
        await seed.step("j5", "reminder", "skipped", reason="holdout")
        await seed.step("j5", "sms_offer", "cancelled", reason="order_completed")
        await seed.journey("j7", "c7", started_at=NOW - timedelta(days=29), status="completed")
        await seed.sent("j7", "reminder", "email", NOW - timedelta(days=29))
        await seed.journey("j8", "c8", flow="payment_failed", status="completed")
        await seed.sent("j8", "retry_payment", "sms", T0)
        await seed.sent("j8", "never_left", "email", T0, state="failed")
        await seed.callback_task("j8", "open")
        await seed.callback_task("j3", "done", "reached")

        assert (await seed.order("c1", "100.00", T0 + timedelta(hours=2))).kind is ConversionKind.CLICKED
        assert (await seed.order("c2", "50.00", T0 + timedelta(hours=4))).step == "sms_offer"
        assert await seed.order("c5", "80.00", T0 + timedelta(hours=5)) is None  # holdout: recorded, not credited
        assert await seed.order("c6", "40.00", T0) is None
        assert await record_refund(conn, order_id="order-c1", value=Decimal("30.00"), now=NOW) == Decimal("70.00")
    yield engine


def _by(rows: list[dict[str, Any]], **key: str) -> dict[str, Any]:
    [found] = [row for row in rows if all(row.get(k) == v for k, v in key.items())]
    return found


async def test_funnel_counts_carts_reaching_each_step_and_abandonment_by_last_step(shop: AsyncEngine) -> None:
    """Reached is cumulative down the checkout; abandonment is split by the furthest step reached."""
    funnel = (await build_stats(shop, since=None, now=NOW))["funnel"]
    steps_ = {row["step"]: row for row in funnel["steps"]}
    assert {s: r["reached"] for s, r in steps_.items()} == {
        "cart": 8,
        "account": 6,
        "address": 5,
        "shipping": 4,
        "payment": 3,
        "review": 1,
    }
    assert {s: r["abandoned"] for s, r in steps_.items()} == {
        "cart": 2,
        "account": 0,
        "address": 1,
        "shipping": 1,
        "payment": 1,
        "review": 1,
    }
    assert funnel["carts_created"] == 8
    assert funnel["abandoned"] == 6 and funnel["abandonment_rate"] == pytest.approx(6 / 8)
    assert steps_["cart"]["abandonment_rate"] == pytest.approx(2 / 8)
    assert steps_["payment"]["drop_off_rate"] == pytest.approx(1 / 3)
    assert steps_["account"]["drop_off_rate"] == 0.0


async def test_funnel_reports_payment_failures_by_reason_orders_buyers_and_conversion(shop: AsyncEngine) -> None:
    """Failures are over carts that tried to pay (a failure or an order); buyers are distinct shoppers."""
    funnel = (await build_stats(shop, since=None, now=NOW))["funnel"]
    assert funnel["payment_attempts"] == 5
    assert funnel["payment_failures"] == 2 and funnel["payment_failure_rate"] == pytest.approx(2 / 5)
    assert {r["reason"]: (r["failures"], r["rate"]) for r in funnel["payment_failures_by_reason"]} == {
        "card_declined": (1, pytest.approx(0.2)),
        "insufficient_funds": (1, pytest.approx(0.2)),
    }
    assert funnel["orders"] == 4 and funnel["buyers"] == 3
    assert funnel["conversion_rate"] == pytest.approx(4 / 8)
    assert funnel["revenue"] == "270.00" and funnel["refunded"] == "30.00"
    assert funnel["average_order_value"] == "67.50"


async def test_recovery_by_flow_counts_journeys_sends_and_orders_net_of_refunds(shop: AsyncEngine) -> None:
    """Holdout journeys are not treated; failed messages are not sent; revenue is net of the refund."""
    recovery = (await build_stats(shop, since=None, now=NOW))["recovery"]
    cart_flow = _by(recovery["by_flow"], flow="abandoned_cart")
    assert cart_flow["journeys"] == 4 and cart_flow["messages_sent"] == 5
    assert cart_flow["recovered_orders"] == 2 and cart_flow["recovery_rate"] == pytest.approx(0.5)
    assert cart_flow["recovered_revenue"] == "120.00"
    assert cart_flow["gross_revenue"] == "150.00" and cart_flow["refunded"] == "30.00"
    assert (cart_flow["clicked_orders"], cart_flow["clicked_revenue"]) == (1, "70.00")
    assert (cart_flow["no_click_orders"], cart_flow["no_click_revenue"]) == (1, "50.00")
    payment = _by(recovery["by_flow"], flow="payment_failed")
    assert (payment["journeys"], payment["messages_sent"], payment["recovered_orders"]) == (1, 1, 0)
    assert payment["recovered_revenue"] == "0.00"


async def test_recovery_by_step_and_channel_credits_the_message_that_won(shop: AsyncEngine) -> None:
    """The click credits the email reminder; the later SMS, not the earlier email, takes the no-click order."""
    recovery = (await build_stats(shop, since=None, now=NOW))["recovery"]
    reminder = _by(recovery["by_step"], flow="abandoned_cart", step="reminder")
    assert (reminder["journeys"], reminder["recovered_orders"], reminder["clicked_orders"]) == (4, 1, 1)
    assert reminder["recovered_revenue"] == "70.00"
    offer = _by(recovery["by_step"], flow="abandoned_cart", step="sms_offer")
    assert (offer["journeys"], offer["recovered_orders"], offer["no_click_orders"]) == (1, 1, 1)
    assert offer["recovery_rate"] == 1.0
    email = _by(recovery["by_channel"], channel="email")
    assert (email["journeys"], email["messages_sent"], email["recovered_orders"]) == (4, 4, 1)
    assert email["recovered_revenue"] == "70.00"
    sms = _by(recovery["by_channel"], channel="sms")
    assert (sms["journeys"], sms["messages_sent"], sms["recovered_orders"]) == (2, 2, 1)
    assert sms["recovered_revenue"] == "50.00"


async def test_totals_count_each_recovered_order_once_even_after_two_messages(shop: AsyncEngine) -> None:
    """c2 got two messages and one order: two recovered orders in all, not three."""
    totals = (await build_stats(shop, since=None, now=NOW))["totals"]
    assert totals["recovered_orders"] == 2
    assert totals["recovered_revenue"] == "120.00" and totals["refunded"] == "30.00"
    assert (totals["clicked_orders"], totals["no_click_orders"]) == (1, 1)
    assert (totals["journeys"], totals["messages_sent"]) == (5, 6)
    assert (totals["holdout_journeys"], totals["holdout_orders"]) == (2, 1)


async def test_lift_compares_treated_with_holdout_and_is_not_significant_with_few_journeys(
    shop: AsyncEngine,
) -> None:
    """The holdout's own order counts for the control group; 4 against 2 journeys proves nothing yet."""
    lift = (await build_stats(shop, since=None, now=NOW))["lift"]
    flow = _by(lift["by_flow"], flow="abandoned_cart")
    assert flow["treated"] == {"journeys": 4, "recovered": 2, "rate": 0.5, "revenue": "120.00"}
    assert flow["control"] == {"journeys": 2, "recovered": 1, "rate": 0.5, "revenue": "80.00"}
    assert flow["absolute_lift"] == 0.0 and flow["relative_lift"] == 0.0
    assert flow["ci_low"] < 0 < flow["ci_high"]
    assert flow["incremental_revenue"] == "-40.00"  # 120 - 80 x 4/2
    assert flow["verdict"] == "not significant yet" and not flow["significant"]
    assert flow["reason"] == "fewer than 30 journeys in a group"
    payment = _by(lift["by_flow"], flow="payment_failed")
    assert payment["control"]["journeys"] == 0 and payment["incremental_revenue"] is None
    assert payment["verdict"] == "not significant yet" and "holdout_percent" in payment["reason"]


async def test_step_lift_counts_steps_that_came_due_on_both_sides(shop: AsyncEngine) -> None:
    """Sent or skipped (consent, holdout) steps count; cancelled ones and false conditions do not."""
    by_step = (await build_stats(shop, since=None, now=NOW))["lift"]["by_step"]
    reminder = _by(by_step, flow="abandoned_cart", step="reminder")
    assert (reminder["treated"]["journeys"], reminder["treated"]["recovered"]) == (4, 2)
    assert (reminder["control"]["journeys"], reminder["control"]["recovered"]) == (2, 1)
    offer = _by(by_step, flow="abandoned_cart", step="sms_offer")
    assert (offer["treated"]["journeys"], offer["treated"]["recovered"]) == (2, 1)
    assert (offer["control"]["journeys"], offer["control"]["recovered"]) == (1, 0)
    assert not [row for row in by_step if row["step"] == "call_me"]


async def test_since_keeps_only_recent_carts_and_journeys(shop: AsyncEngine) -> None:
    """The month-old cart and its journey drop out of every section."""
    stats = await build_stats(shop, since=WEEK, now=NOW)
    assert stats["since"] == WEEK.isoformat()
    assert stats["funnel"]["carts_created"] == 7 and stats["funnel"]["steps"][0]["abandoned"] == 1
    assert _by(stats["recovery"]["by_flow"], flow="abandoned_cart")["journeys"] == 3
    assert _by(stats["recovery"]["by_channel"], channel="email")["messages_sent"] == 3
    assert _by(stats["lift"]["by_flow"], flow="abandoned_cart")["treated"]["journeys"] == 3
    assert stats["totals"]["recovered_orders"] == 2


async def test_callbacks_are_counted_by_status_and_outcome(shop: AsyncEngine) -> None:
    """One open task and one done with its outcome."""
    callbacks = (await build_stats(shop, since=None, now=NOW))["callbacks"]
    assert (callbacks["by_status"], callbacks["by_outcome"]) == ({"done": 1, "open": 1}, {"reached": 1})
    assert callbacks["tasks"] == 2


async def test_stats_are_json_ready_and_name_the_currency(shop: AsyncEngine) -> None:
    """Nothing but JSON types, so the API and the CLI can dump them as they are."""
    stats = await build_stats(shop, since=None, now=NOW)
    assert json.loads(json.dumps(stats)) == stats
    assert stats["currencies"] == ["EUR"] and stats["warnings"] == []


async def test_mixed_currencies_warn_and_store_keeps_one_shop(engine: AsyncEngine) -> None:
    """Two stores in two currencies: never added (amounts per currency, sums withheld), exact figures per store."""
    async with engine.begin() as conn:
        seed = Seed(conn)
        await seed.cart("fr-1", step="cart", ordered_at=T0, value="10.00")
        await seed.cart("us-1", step="cart", ordered_at=T0, value="20.00", store="us", currency="USD")
        await seed.cart("us-2", step="review", store="us", currency="USD")
    everything = await build_stats(engine, since=None, now=NOW)
    assert everything["currencies"] == ["EUR", "USD"] and "never added" in everything["warnings"][0]
    assert everything["funnel"]["revenue"] is None and everything["totals"]["recovered_revenue"] is None
    assert everything["funnel"]["orders"] == 2  # counts are still counted across stores
    money = everything["money"]
    assert (money["EUR"]["revenue"], money["USD"]["revenue"]) == ("10.00", "20.00")
    assert (money["EUR"]["orders"], money["USD"]["orders"]) == (1, 1)
    us = await build_stats(engine, since=None, now=NOW, store="us")
    assert us["store"] == "us" and us["currencies"] == ["USD"] and us["warnings"] == []
    assert (us["funnel"]["carts_created"], us["funnel"]["orders"], us["funnel"]["revenue"]) == (2, 1, "20.00")


async def test_an_empty_store_gives_zeros_and_no_rates(engine: AsyncEngine) -> None:
    """No cart: counts are 0, rates are None, sections are empty lists."""
    stats = await build_stats(engine, since=None, now=NOW)
    assert stats["funnel"]["carts_created"] == 0 and stats["funnel"]["abandonment_rate"] is None
    assert stats["recovery"] == {"by_flow": [], "by_step": [], "by_channel": []}
    assert stats["lift"] == {"by_flow": [], "by_step": []}
    assert stats["totals"]["recovered_orders"] == 0 and stats["totals"]["recovered_revenue"] == "0.00"


async def test_record_order_credits_the_clicked_message_over_a_later_send(engine: AsyncEngine) -> None:
    """Clicked email, then an SMS, then the order: last click gives the email reminder the credit."""
    async with engine.begin() as conn:
        seed = Seed(conn)
        await seed.cart("c1", step="payment")
        await seed.journey("j1", "c1")
        email = await seed.sent("j1", "reminder", "email", T0)
        await seed.sent("j1", "sms_offer", "sms", T0 + timedelta(hours=2))
        await seed.click(email, T0 + timedelta(hours=1))
        conversion = await seed.order("c1", "99.90", T0 + timedelta(hours=3))
        assert conversion is not None
        assert (conversion.message_id, conversion.step, conversion.kind) == (email, "reminder", ConversionKind.CLICKED)
        [row] = (await conn.execute(select(conversions))).mappings().all()
    assert row["journey_id"] == "j1" and row["message_id"] == email and row["channel"] == "email"
    assert row["template"] == "tpl_reminder" and row["kind"] == "clicked" and row["model"] == "last_click"
    assert row["revenue"] == Decimal("99.90") and row["refunded"] == Decimal("0") and not row["holdout"]
    assert row["time_to_convert_s"] == 3 * 3600.0


async def test_record_order_ignores_a_link_scanners_click(engine: AsyncEngine) -> None:
    """A bot's hit on the SMS does not count: the order goes to the SMS as bought without a click."""
    async with engine.begin() as conn:
        seed = Seed(conn)
        await seed.cart("c1", step="payment")
        await seed.journey("j1", "c1")
        await seed.sent("j1", "reminder", "email", T0)
        sms = await seed.sent("j1", "sms_offer", "sms", T0 + timedelta(hours=2))
        await seed.click(sms, T0 + timedelta(hours=2, seconds=5), user_agent_class="bot")
        conversion = await seed.order("c1", "99.90", T0 + timedelta(hours=3))
    assert conversion is not None
    assert (conversion.message_id, conversion.kind) == (sms, ConversionKind.SENT_NO_CLICK)


async def test_record_order_without_a_message_before_it_records_nothing(engine: AsyncEngine) -> None:
    """A direct buyer, and a buyer whose only message left after the order, credit nothing."""
    async with engine.begin() as conn:
        seed = Seed(conn)
        await seed.cart("direct", step="review", abandoned=False)
        await seed.cart("late", step="cart")
        await seed.journey("j-late", "late")
        await seed.sent("j-late", "reminder", "email", T0 + timedelta(hours=1))
        assert await seed.order("direct", "10.00", T0) is None
        assert await seed.order("late", "10.00", T0) is None
        assert (await conn.execute(select(conversions))).all() == []


async def test_record_order_is_idempotent_and_records_holdout_orders_without_credit(engine: AsyncEngine) -> None:
    """The same order twice is one row; a holdout shopper's order is a holdout row with no message."""
    async with engine.begin() as conn:
        seed = Seed(conn)
        await seed.cart("c1", step="cart")
        await seed.journey("j1", "c1", holdout=True, flow="payment_failed")
        await seed.step("j1", "retry_payment", "skipped", reason="holdout")
        for _ in range(2):
            assert await seed.order("c1", "25.00", STARTED + timedelta(hours=3)) is None
        [row] = (await conn.execute(select(conversions))).mappings().all()
    assert (row["kind"], row["journey_id"], row["flow"], row["holdout"]) == ("holdout", "j1", "payment_failed", True)
    assert row["message_id"] is None and row["step"] is None
    assert row["time_to_convert_s"] == 3 * 3600.0


async def test_refunds_add_up_and_never_take_revenue_below_zero(engine: AsyncEngine) -> None:
    """Two refunds larger than the order leave 0; an unknown order returns None; a negative one is refused."""
    async with engine.begin() as conn:
        seed = Seed(conn)
        await seed.cart("c1", step="cart")
        await seed.journey("j1", "c1")
        await seed.sent("j1", "reminder", "email", T0)
        assert await seed.order("c1", "60.00", T0 + timedelta(hours=1)) is not None
        assert await record_refund(conn, order_id="order-c1", value=Decimal("40.00"), now=NOW) == Decimal("20.00")
        assert await record_refund(conn, order_id="order-c1", value=Decimal("40.00"), now=NOW) == Decimal("0")
        assert await record_refund(conn, order_id="unknown", value=Decimal("1.00"), now=NOW) is None
        with pytest.raises(ValueError, match="negative"):
            await record_refund(conn, order_id="order-c1", value=Decimal("-1"), now=NOW)
        refunded = await conn.scalar(select(conversions.c.refunded))
    assert refunded == Decimal("80.00")
    totals = (await build_stats(engine, since=None, now=NOW))["totals"]
    assert totals["recovered_revenue"] == "0.00" and totals["refunded"] == "80.00"


def test_report_command_prints_json_and_tables_and_writes_html(tmp_path: Path) -> None:
    """`recovery report` on a SQLite file: JSON on stdout, rich tables, and an HTML page with charts."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'recovery.db'}"

    async def prepare() -> None:
        # The command reads the wall clock: one cart from yesterday, one from last month.
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
            async with engine.begin() as conn:
                today = datetime.now(UTC)
                await Seed(conn).cart("recent", step="cart", first_event_at=today - timedelta(days=1))
                await Seed(conn).cart("old", step="cart", first_event_at=today - timedelta(days=30))
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    config = tmp_path / "recovery.yaml"
    config.write_text(f"database:\n  url: {url}\n", encoding="utf-8")
    app = Typer()
    app.command()(report)
    runner = CliRunner()
    as_json = runner.invoke(app, ["--config", str(config), "--since", "7d", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["funnel"]["carts_created"] == 1
    page = tmp_path / "report.html"
    as_table = runner.invoke(app, ["--config", str(config), "--html", str(page)])
    assert as_table.exit_code == 0, as_table.output
    assert "Checkout funnel" in as_table.stdout and "2 carts" in as_table.stdout
    assert "<svg" in page.read_text(encoding="utf-8")
    bad = runner.invoke(app, ["--config", str(config), "--since", "a week"])
    assert bad.exit_code == 2 and "not a duration" in bad.stderr


def test_report_command_explains_a_bad_config_or_database(tmp_path: Path) -> None:
    """A missing config file exits 2; a database that cannot be opened exits 1 naming database.url."""
    app = Typer()
    app.command()(report)
    runner = CliRunner()
    missing = runner.invoke(app, ["--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    config = tmp_path / "recovery.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path}\n", encoding="utf-8")  # a directory
    unreadable = runner.invoke(app, ["--config", str(config)])
    assert unreadable.exit_code == 1 and "database.url" in unreadable.stderr


async def test_figures_per_template_version_and_feedback_answers(shop: AsyncEngine) -> None:
    """Sends, clicks and recovered revenue split by the template version each message used; answers counted."""
    async with shop.begin() as conn:
        for journey_id, version in (
            ("j1", "en/tpl.email txt@1"),
            ("j3", "en/tpl.email txt@1"),
            ("j2", "en/tpl.email txt@2"),
        ):
            await conn.execute(
                messages.update()
                .where(messages.c.message_id == f"{journey_id}:reminder")
                .values(template_version=version)
            )
        for journey_id, answer in (("j1", "comparing"), ("j3", "shipping_cost"), ("j2", "shipping_cost")):
            await conn.execute(
                feedback_answers.insert().values(
                    journey_id=journey_id, cart_id="x", store="fr", answer=answer, answered_at=T0
                )
            )
    stats = await build_stats(shop, since=None, now=NOW)
    rows = {(r["template"], r["version"]): r for r in stats["template_versions"]}
    first, second = rows[("tpl_reminder", "en/tpl.email txt@1")], rows[("tpl_reminder", "en/tpl.email txt@2")]
    assert (first["sent"], first["clicked"], first["recovered_orders"]) == (2, 1, 1)
    assert first["recovered_revenue"] == {"EUR": "70.00"}
    assert (second["sent"], second["clicked"], second["recovered_orders"], second["recovered_revenue"]) == (1, 0, 0, {})
    assert stats["feedback"] == {"comparing": 1, "shipping_cost": 2}
    assert stats["feedback_by_store"] == {"fr": {"comparing": 1, "shipping_cost": 2}}
    assert stats["money"]["EUR"]["recovered_revenue"] == stats["totals"]["recovered_revenue"]


def test_report_reads_and_never_migrates_a_database_behind_the_code(tmp_path: Path) -> None:
    """`recovery report` on a never-migrated database exits 1 naming `recovery db upgrade`; it creates no table."""
    import sqlite3

    app = Typer()
    app.command()(report)
    database = tmp_path / "empty.db"
    sqlite3.connect(database).close()
    config = tmp_path / "recovery.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{database}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["--config", str(config)])
    assert result.exit_code == 1
    assert "recovery db upgrade" in result.stderr
    with sqlite3.connect(database) as check:
        assert check.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []
