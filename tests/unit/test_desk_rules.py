"""The desk's pure rules by tables: capacity per hour, retries, history, who may get a link, stores, lines."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from recovery.desk.agent_lines import AgentLines
from recovery.desk.capacity import per_hour_counts, plan_due, slots_with_room
from recovery.desk.hours import DEFAULT_HOURS, parse_hours
from recovery.desk.link_rows import why_not_send
from recovery.desk.link_step import is_link_step, link_flow_step, link_step_name
from recovery.desk.queue import retries_left
from recovery.desk.task_context import summarise_orders
from recovery.desk.task_view import store_json
from recovery.journeys.records import CustomerState
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.stores import StoreDirectory

HOURS = parse_hours(DEFAULT_HOURS)  # Mon-Fri 09-19, Sat 10-17 (shopper's time)
PARIS = ZoneInfo("Europe/Paris")
WED_10 = datetime(2026, 1, 7, 10, tzinfo=UTC)  # 11:00 in Paris
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def spread(count: int, start: datetime, per_hour: int | None, taken: Counter[datetime] | None = None) -> list[datetime]:
    """Plan ``count`` tasks one after the other, each counted before the next is planned."""
    counts: Counter[datetime] = Counter(taken or {})
    planned = []
    for _ in range(count):
        due = plan_due(start, PARIS, HOURS, counts, per_hour)
        counts.update(per_hour_counts([due]))
        planned.append(due)
    return planned


@pytest.mark.parametrize(
    ("count", "start", "per_hour", "expected"),
    [
        # capacity 1 per hour: three tasks at 10:00 spread over 10:00, 11:00 and 12:00
        (3, WED_10, 1, [WED_10, WED_10 + timedelta(hours=1), WED_10 + timedelta(hours=2)]),
        # capacity 2: two in the first hour, the third at the next hour's start
        (3, WED_10, 2, [WED_10, WED_10, WED_10 + timedelta(hours=1)]),
        # no limit: everyone due now
        (3, WED_10, None, [WED_10, WED_10, WED_10]),
        # 17:20 UTC = 18:20 Paris, capacity 1: 17:20, then the next morning at 09:00 Paris (08:00 UTC)
        (
            2,
            datetime(2026, 1, 7, 17, 20, tzinfo=UTC),
            1,
            [datetime(2026, 1, 7, 17, 20, tzinfo=UTC), datetime(2026, 1, 8, 8, tzinfo=UTC)],
        ),
    ],
)
def test_tasks_are_spread_so_no_hour_holds_more_than_the_team_can_call(
    count: int, start: datetime, per_hour: int | None, expected: list[datetime]
) -> None:
    """callbacks.per_hour: a full hour pushes the next task to the next hour with room, inside calling hours."""
    assert spread(count, start, per_hour) == expected


def test_an_hour_already_full_of_booked_slots_is_skipped() -> None:
    """Booked slots count like direct tasks: 10:00 and 11:00 full, the new task is due at 12:00."""
    taken = per_hour_counts([WED_10 + timedelta(minutes=30), WED_10 + timedelta(hours=1, minutes=30)])
    assert spread(1, WED_10, 1, taken) == [WED_10 + timedelta(hours=2)]


def test_the_slot_picker_offers_only_slots_whose_hour_has_room() -> None:
    """With 1 per hour and a call at 10:30, the 10:00 and 10:30 slots go; 11:00 stays."""
    offered = [WED_10, WED_10 + timedelta(minutes=30), WED_10 + timedelta(hours=1)]
    taken = per_hour_counts([WED_10 + timedelta(minutes=30)])
    assert slots_with_room(offered, taken, 1) == [WED_10 + timedelta(hours=1)]
    assert slots_with_room(offered, taken, None) == offered


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "again"), [(1, 3, True), (2, 3, True), (3, 3, False), (1, 1, False)]
)
def test_no_answer_is_tried_again_until_max_attempts(attempts: int, max_attempts: int, again: bool) -> None:
    """callbacks.max_attempts completions, then the task is done."""
    assert retries_left(attempts, max_attempts) is again


def order(cart_id: str, value: str, day: int, refunded: str | None = None, currency: str = "EUR") -> dict[str, Any]:
    return {
        "cart_id": cart_id,
        "order_value": Decimal(value),
        "refunded_value": Decimal(refunded) if refunded else None,
        "currency": currency,
        "ordered_at": datetime(2025, 12, day, tzinfo=UTC),
    }


def test_history_counts_the_shoppers_other_orders_net_of_refunds() -> None:
    """Two earlier orders (one partly refunded); the cart being called about is left out."""
    orders = [order("a", "60.00", 1), order("b", "40.00", 5, refunded="15.00"), order("now", "99.00", 9)]
    assert summarise_orders(orders, "now") == {
        "orders": 2,
        "revenue": "85.00",
        "currency": "EUR",
        "last_order_at": datetime(2025, 12, 5, tzinfo=UTC).isoformat(),
    }
    assert summarise_orders([], "now")["orders"] == 0


def shopper(**fields: Any) -> CustomerState:
    base: dict[str, Any] = {
        "customer_key": "c",
        "email": "a@example.com",
        "phone": "+33612345678",
        "consent_email": True,
        "consent_sms": True,
        "updated_at": WED_10,
    }
    return CustomerState(**(base | fields))


@pytest.mark.parametrize(
    ("customer", "channel", "reason"),
    [
        (shopper(), ChannelName.SMS, None),
        (shopper(), ChannelName.EMAIL, None),
        (shopper(consent_sms=None), ChannelName.SMS, "consented"),
        (shopper(consent_sms=False), ChannelName.SMS, "consented"),
        (shopper(email=None), ChannelName.EMAIL, "no email address"),
        (shopper(phone=None), ChannelName.SMS, "no mobile number"),
        (shopper(phone="+33123456789"), ChannelName.SMS, "landline"),
        (None, ChannelName.SMS, "no mobile number"),
    ],
)
def test_a_link_goes_only_to_an_address_with_consent(
    customer: CustomerState | None, channel: ChannelName, reason: str | None
) -> None:
    """send-link refuses (422) with the reason: no address, a landline, no consent for that channel."""
    found = why_not_send(customer, channel)
    assert found is None if reason is None else (found is not None and reason in found)


def test_an_agents_link_is_a_step_with_its_own_template() -> None:
    """agent_link_sms_1 fires the agent_link template on SMS; flow steps are not mistaken for it."""
    name = link_step_name(ChannelName.SMS, 1)
    step = link_flow_step(name)
    assert name == "agent_link_sms_1" and is_link_step(name)
    assert step is not None and (step.channel, step.template, step.after) == (
        ChannelName.SMS,
        "agent_link",
        timedelta(0),
    )
    assert link_flow_step("reminder") is None and not is_link_step("agent_link_fax_1")


@pytest.mark.parametrize(
    ("stores", "store_id", "name", "methods"),
    [
        ({}, "be", "be", ()),
        ({"default": {"name": "Maison Dupont", "payment_methods": ["card"]}}, "be", "Maison Dupont", ("card",)),
        (
            {"default": {"name": "Maison Dupont"}, "be": {"name": "Dupont BE", "payment_methods": []}},
            "be",
            "Dupont BE",
            (),
        ),
    ],
)
def test_a_store_is_named_from_settings_else_by_its_id(
    stores: dict[str, Any], store_id: str, name: str, methods: tuple[str, ...]
) -> None:
    """The desk's Task.store: stores.<id>.name, else stores.default's, else the id; payment methods likewise."""
    identity = StoreDirectory.from_settings(Settings(stores=stores)).get(store_id)
    assert (identity.payment_methods, store_json(identity)) == (methods, {"id": store_id, "name": name})


@pytest.mark.parametrize(
    ("language", "methods", "present", "absent"),
    [
        # No store configured with payment methods: no suggestion (stores.md: "none listed: no suggestion").
        ("en", None, ["Can I help you finish your order?"], ["PayPal", "another card"]),
        ("en", ["card", "paypal"], ["another card or PayPal"], ["instalments"]),
        ("en", ["installments"], ["paying in instalments"], ["PayPal", "another card"]),
        ("en", [], ["Can I help you finish your order?"], ["PayPal"]),
        ("fr", ["paypal"], ["PayPal"], ["plusieurs fois", "autre carte"]),
    ],
)
def test_the_suggested_line_offers_only_the_stores_payment_methods(
    language: str, methods: list[str] | None, present: list[str], absent: list[str]
) -> None:
    """A declined card: the line suggests what the store accepts, nothing it does not."""
    task = {"payment": {"reason": "card_declined"}, "customer": {"name": "Élodie"}}
    line = AgentLines(TEMPLATES).line(language, task, methods)
    assert line is not None
    assert all(text in line for text in present), line
    assert not any(text in line for text in absent), line
