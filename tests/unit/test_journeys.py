"""Applying events to carts: idle timers, late events, orders and journey starts, as pure decisions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from recovery.events import Customer, Event, parse_event
from recovery.journeys.apply import (
    ActiveJourney,
    BatchOutcome,
    JourneyEnd,
    Rules,
    apply_batch,
    customer_key_of,
    journey_id_for,
    merge_customer,
    start_journeys,
)
from recovery.journeys.records import CartState, CustomerState
from recovery.rules import PlannedStep, Trigger, parse_flows
from recovery.states import ChannelName, JourneyStatus

FLOWS = parse_flows(
    """\
flows:
  - name: abandoned
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 1h, channel: email, template: cart_reminder}
  - name: payment
    trigger: payment.failed
    reentry_after: 1d
    steps:
      - {name: retry, after: 2m, channel: sms, template: payment_failed}
      - {name: call, after: 0s, channel: callback}
"""
)
IDLE = timedelta(minutes=30)
RULES = Rules(flows=FLOWS, idle_after=IDLE, in_holdout=lambda key: False)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CART = "cart-1"


def at(hour: int, minute: int = 0) -> datetime:
    """A UTC time on the test day."""
    return datetime(2026, 11, 20, hour, minute, tzinfo=UTC)


def parsed(document: dict[str, Any]) -> Event:
    """An event through the real parser, so the tests feed what ingest feeds."""
    result = parse_event(json.dumps(document).encode())
    assert not hasattr(result, "reason"), result
    return result


def envelope(kind: str, when: datetime, **fields: Any) -> dict[str, Any]:
    """The common fields of an event for ``CART``."""
    base = {
        "id": f"{kind}@{when.isoformat()}",
        "type": kind,
        "occurred_at": when.isoformat(),
        "cart_id": CART,
    }
    return base | fields


def cart_updated(when: datetime, *, value: int = 60, quantity: int = 1, **fields: Any) -> Event:
    """A ``cart.updated``; ``quantity=0`` sends an emptied cart."""
    items = [{"sku": "A", "name": "Bag", "quantity": quantity, "unit_price": value}] if quantity else []
    cart = {"currency": "EUR", "value": value if quantity else 0, "items": items}
    return parsed(envelope("cart.updated", when, cart=cart, **fields))


def checkout_step(when: datetime, step: str) -> Event:
    """A ``checkout.step`` without a cart snapshot."""
    return parsed(envelope("checkout.step", when, checkout_step=step))


def payment_failed(when: datetime, **fields: Any) -> Event:
    """A declined card."""
    return parsed(envelope("payment.failed", when, payment={"reason": "card_declined", "method": "card"}, **fields))


def order_completed(when: datetime, value: str = "194.70") -> Event:
    """The cart was bought."""
    return parsed(envelope("order.completed", when, order={"id": "ord-1", "value": value, "currency": "EUR"}))


def existing_cart(**changes: Any) -> CartState:
    """A cart with one item, last seen at 09:00, its idle timer armed for 09:30."""
    base = CartState(
        cart_id=CART,
        store="default",
        customer_key=f"cart:{CART}",
        cart={"currency": "EUR", "value": "60", "items": []},
        value=Decimal(60),
        currency="EUR",
        item_count=1,
        first_event_at=at(8),
        last_event_at=at(9),
        abandon_at=at(9, 30),
    )
    return replace(base, **changes)


def abandoned_journey(*, trigger_event_at: datetime = at(9), messages_sent: int = 0, **changes: Any) -> ActiveJourney:
    """A running ``cart.abandoned`` journey of ``CART``."""
    return ActiveJourney(
        journey_id=changes.pop("journey_id", "j-abandoned"),
        cart_id=CART,
        flow=changes.pop("flow", "abandoned"),
        trigger=changes.pop("trigger", Trigger.CART_ABANDONED),
        trigger_event_at=trigger_event_at,
        messages_sent=messages_sent,
    )


def apply(
    events: Iterable[Event],
    *,
    carts: Mapping[str, CartState] | None = None,
    customers: Mapping[str, CustomerState] | None = None,
    active: Iterable[ActiveJourney] = (),
    last_entries: dict[tuple[str, str], datetime] | None = None,
) -> BatchOutcome:
    """``apply_batch`` at ``NOW`` with the test rules."""
    return apply_batch(
        events,
        rules=RULES,
        carts=carts or {},
        customers=customers or {},
        active=active,
        last_entries={} if last_entries is None else last_entries,
        now=NOW,
    )


def test_a_cart_with_items_arms_the_idle_timer() -> None:
    """A new cart with items is due to be abandoned ``idle_after`` from now."""
    outcome = apply([cart_updated(at(11, 50))])
    cart = outcome.carts[CART]
    assert cart.abandon_at == NOW + IDLE
    assert (cart.value, cart.currency, cart.item_count) == (Decimal(60), "EUR", 1)
    assert cart.first_event_at == cart.last_event_at == at(11, 50)
    assert cart.customer_key == "cart:cart-1"
    assert outcome.new_journeys == []
    assert outcome.ended == []


def test_item_count_sums_quantities() -> None:
    """``item_count`` is the number of units, not of lines."""
    assert apply([cart_updated(at(11), quantity=3)]).carts[CART].item_count == 3


def test_an_emptied_cart_disarms_the_idle_timer() -> None:
    """A cart emptied by the shopper is never abandoned."""
    cart = apply([cart_updated(at(10), quantity=0)], carts={CART: existing_cart()}).carts[CART]
    assert cart.abandon_at is None
    assert cart.item_count == 0
    assert cart.last_event_at == at(10)


def test_checkout_progress_rearms_the_idle_timer_of_a_cart_with_items() -> None:
    """A checkout step counts as activity: the timer restarts from now."""
    cart = apply([checkout_step(at(10), "address")], carts={CART: existing_cart()}).carts[CART]
    assert cart.abandon_at == NOW + IDLE
    assert cart.value == Decimal(60)


def test_activity_cancels_an_older_abandoned_cart_journey() -> None:
    """The shopper came back after the abandonment: the abandoned-cart journey is cancelled."""
    outcome = apply(
        [cart_updated(at(10))],
        carts={CART: existing_cart()},
        active=[abandoned_journey(trigger_event_at=at(9))],
    )
    assert outcome.ended == [
        JourneyEnd(
            journey_id="j-abandoned",
            cart_id=CART,
            flow="abandoned",
            status=JourneyStatus.CANCELLED,
            reason="cart_activity",
        )
    ]
    assert outcome.carts[CART].abandon_at == NOW + IDLE


@pytest.mark.parametrize(
    ("event_at", "cancelled"),
    [
        pytest.param(at(9, 1), True, id="after the trigger"),
        pytest.param(at(9), False, id="at the trigger itself"),
    ],
)
def test_only_activity_after_the_trigger_cancels(event_at: datetime, cancelled: bool) -> None:
    """The event that triggered the abandonment (same time) does not cancel its own journey."""
    outcome = apply([checkout_step(event_at, "shipping")], carts={CART: existing_cart()}, active=[abandoned_journey()])
    assert bool(outcome.ended) is cancelled


def test_activity_does_not_cancel_a_payment_failed_journey() -> None:
    """Browsing after a failed payment keeps the payment-recovery journey running."""
    payment_journey = abandoned_journey(journey_id="j-pay", flow="payment", trigger=Trigger.PAYMENT_FAILED)
    outcome = apply([cart_updated(at(10))], carts={CART: existing_cart()}, active=[payment_journey])
    assert outcome.ended == []


def test_a_late_cart_event_neither_overwrites_the_snapshot_nor_cancels() -> None:
    """An event older than the cart's latest is stale: snapshot, timer and journeys stay as they were."""
    current = existing_cart(last_event_at=at(9, 30), abandon_at=None, abandoned_at=at(10))
    outcome = apply(
        [cart_updated(at(9, 10), value=5)],
        carts={CART: current},
        active=[abandoned_journey(trigger_event_at=at(9, 30))],
    )
    cart = outcome.carts[CART]
    assert cart.value == Decimal(60)
    assert cart.cart == current.cart
    assert cart.last_event_at == at(9, 30)
    assert cart.abandon_at is None
    assert outcome.ended == []


@pytest.mark.parametrize(
    ("messages_sent", "status", "revenue"),
    [
        pytest.param(2, JourneyStatus.CONVERTED, Decimal("194.70"), id="after messages: converted"),
        pytest.param(0, JourneyStatus.CANCELLED, None, id="before any message: cancelled"),
    ],
)
def test_an_order_ends_the_journey_and_disarms_the_timer(
    messages_sent: int, status: JourneyStatus, revenue: Decimal | None
) -> None:
    """An order ends a journey: converted with the order's revenue once a message went out, else cancelled."""
    outcome = apply(
        [order_completed(at(10))],
        carts={CART: existing_cart()},
        active=[abandoned_journey(messages_sent=messages_sent)],
    )
    assert outcome.ended == [
        JourneyEnd(
            journey_id="j-abandoned",
            cart_id=CART,
            flow="abandoned",
            status=status,
            reason="order_completed",
            revenue=revenue,
        )
    ]
    cart = outcome.carts[CART]
    assert cart.abandon_at is None
    assert (cart.ordered_at, cart.order_id, cart.order_value) == (at(10), "ord-1", Decimal("194.70"))


def test_an_order_ends_every_active_journey_of_the_cart() -> None:
    """Both the abandoned-cart and the payment journeys end; another cart's journey is untouched."""
    journeys = [
        abandoned_journey(messages_sent=1),
        abandoned_journey(journey_id="j-pay", flow="payment", trigger=Trigger.PAYMENT_FAILED),
        replace(abandoned_journey(journey_id="j-other"), cart_id="cart-2"),
    ]
    outcome = apply([order_completed(at(10))], carts={CART: existing_cart()}, active=journeys)
    assert {(end.journey_id, end.status) for end in outcome.ended} == {
        ("j-abandoned", JourneyStatus.CONVERTED),
        ("j-pay", JourneyStatus.CANCELLED),
    }


def test_an_order_for_an_unknown_cart_creates_a_closed_cart() -> None:
    """An order seen before any cart event records the cart as bought, with no timer."""
    cart = apply([order_completed(at(10))]).carts[CART]
    assert cart.ordered_at == at(10)
    assert cart.abandon_at is None
    assert cart.currency == "EUR"


@pytest.mark.parametrize(
    "late",
    [
        pytest.param(cart_updated(at(11), value=999), id="cart.updated"),
        pytest.param(checkout_step(at(11), "review"), id="checkout.step"),
        pytest.param(payment_failed(at(11)), id="payment.failed"),
        pytest.param(cart_updated(at(9, 30)), id="older cart.updated"),
    ],
)
def test_browsing_after_an_order_changes_nothing(late: Event) -> None:
    """A bought cart is closed: later cart events change no state, arm no timer and start no journey."""
    bought = existing_cart(ordered_at=at(10), abandon_at=None, order_id="ord-1", order_value=Decimal(60))
    outcome = apply([late], carts={CART: bought})
    assert outcome.carts[CART] == bought
    assert outcome.new_journeys == []
    assert outcome.ended == []


def test_a_second_order_event_does_not_replace_the_first() -> None:
    """A repeated order keeps the first order's time and id."""
    bought = existing_cart(ordered_at=at(10), abandon_at=None, order_id="ord-1", order_value=Decimal(60))
    assert apply([order_completed(at(11), value="1.00")], carts={CART: bought}).carts[CART] == bought


def test_a_refund_is_added_to_the_refunded_value() -> None:
    """Refunds accumulate on the cart for attribution."""
    refund = parsed(envelope("order.refunded", at(13), order={"id": "ord-1", "value": "20.5", "currency": "EUR"}))
    bought = existing_cart(ordered_at=at(10), refunded_value=Decimal("10"))
    assert apply([refund], carts={CART: bought}).carts[CART].refunded_value == Decimal("30.5")


def test_payment_failed_starts_the_payment_journey_with_its_steps() -> None:
    """A failed payment starts the payment flow now, each step due ``after`` from now."""
    event = payment_failed(at(11, 55), cart={"currency": "EUR", "value": 250, "items": []})
    outcome = apply([event], carts={CART: existing_cart()})
    [journey] = outcome.new_journeys
    assert (journey.flow, journey.trigger, journey.cart_id) == ("payment", Trigger.PAYMENT_FAILED, CART)
    assert journey.started_at == NOW
    assert journey.trigger_event_at == at(11, 55)
    assert journey.journey_id == journey_id_for("payment", CART, event.occurred_at)
    assert journey.holdout is False
    assert journey.steps == [
        PlannedStep(name="retry", position=0, channel=ChannelName.SMS, due_at=NOW + timedelta(minutes=2)),
        PlannedStep(name="call", position=1, channel=ChannelName.CALLBACK, due_at=NOW),
    ]
    assert journey.context["payment"]["reason"] == "card_declined"
    assert outcome.carts[CART].value == Decimal(250)


def test_holdout_rule_marks_the_new_journey() -> None:
    """The holdout rule decides, per customer key, whether a journey is a control."""
    rules = replace(RULES, in_holdout=lambda key: key == "cart:cart-1")
    outcome = apply_batch(
        [payment_failed(at(11))], rules=rules, carts={}, customers={}, active=[], last_entries={}, now=NOW
    )
    assert [journey.holdout for journey in outcome.new_journeys] == [True]


@pytest.mark.parametrize(
    ("last_entered", "started"),
    [
        pytest.param(None, True, id="first entry"),
        pytest.param(NOW - timedelta(hours=23), False, id="within reentry_after"),
        pytest.param(NOW - timedelta(days=1), True, id="reentry_after passed"),
    ],
)
def test_reentry_after_limits_how_often_a_customer_enters_a_flow(last_entered: datetime | None, started: bool) -> None:
    """The same customer re-enters the payment flow only once its ``reentry_after`` (1 day) has passed."""
    entries = {} if last_entered is None else {("payment", "cust-7"): last_entered}
    outcome = apply([payment_failed(at(11), customer={"id": "cust-7"})], last_entries=entries)
    assert bool(outcome.new_journeys) is started
    if started:
        assert entries[("payment", "cust-7")] == NOW


def test_two_failures_in_one_batch_start_one_journey() -> None:
    """A second failed payment in the same batch is inside reentry_after of the first."""
    outcome = apply([payment_failed(at(11)), payment_failed(at(11, 5))])
    assert len(outcome.new_journeys) == 1


def test_reentry_is_per_customer_across_carts() -> None:
    """The same customer failing to pay on two carts in one batch enters the flow once."""
    other = parsed(
        envelope("payment.failed", at(11, 5), payment={"reason": "other"}, customer={"id": "cust-7"})
        | {"cart_id": "cart-2"}
    )
    outcome = apply([payment_failed(at(11), customer={"id": "cust-7"}), other])
    assert [journey.cart_id for journey in outcome.new_journeys] == [CART]


def test_events_apply_in_occurred_at_order_even_when_given_out_of_order() -> None:
    """An order at 10:00 listed after 10:30 browsing still converts the journey; the browsing is ignored."""
    outcome = apply(
        [cart_updated(at(10, 30), value=5), order_completed(at(10))],
        carts={CART: existing_cart()},
        active=[abandoned_journey(messages_sent=1)],
    )
    assert [(end.status, end.revenue) for end in outcome.ended] == [(JourneyStatus.CONVERTED, Decimal("194.70"))]
    cart = outcome.carts[CART]
    assert cart.value == Decimal(60)
    assert cart.abandon_at is None


def test_out_of_order_snapshots_keep_the_newest() -> None:
    """Two cart updates in reverse order leave the newer snapshot, whatever the list order."""
    newest = cart_updated(at(10, 10), quantity=0)
    older = cart_updated(at(10, 5), value=80)
    for batch in ([newest, older], [older, newest]):
        cart = apply(batch).carts[CART]
        assert (cart.item_count, cart.abandon_at, cart.last_event_at) == (0, None, at(10, 10))


def test_an_order_later_in_the_batch_ends_a_journey_started_earlier_in_it() -> None:
    """payment.failed then order.completed in one batch leaves no active journey behind."""
    outcome = apply([order_completed(at(10, 5)), payment_failed(at(10))], carts={CART: existing_cart()})
    [started] = outcome.new_journeys
    assert outcome.ended == [
        JourneyEnd(
            journey_id=started.journey_id,
            cart_id=CART,
            flow="payment",
            status=JourneyStatus.CANCELLED,
            reason="order_completed",
        )
    ]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (["cart", "shipping"], "shipping"),
        (["payment", "address"], "payment"),
        (["review", "cart", "account"], "review"),
        (["account"], "account"),
    ],
)
def test_checkout_step_keeps_the_furthest_step(steps: list[str], expected: str) -> None:
    """Going back in the checkout does not lose how far the shopper got."""
    events = [checkout_step(at(10, minute), step) for minute, step in enumerate(steps)]
    assert apply(events, carts={CART: existing_cart()}).carts[CART].checkout_step == expected


def test_a_late_checkout_step_still_counts_if_it_is_further() -> None:
    """Checkout progress is order-independent: a late but further step is kept."""
    cart = existing_cart(checkout_step="address", last_event_at=at(10))
    assert apply([checkout_step(at(9, 50), "payment")], carts={CART: cart}).carts[CART].checkout_step == "payment"


def test_consent_changed_updates_the_customer_only() -> None:
    """A consent change merges into the customer and touches no cart."""
    event = parsed(
        {
            "id": "c1",
            "type": "consent.changed",
            "occurred_at": at(10).isoformat(),
            "customer": {"id": "cust-7", "consent": {"sms": False}},
        }
    )
    current = CustomerState(customer_key="cust-7", consent_sms=True, consent_email=True, updated_at=at(9))
    outcome = apply([event], customers={"cust-7": current})
    assert outcome.carts == {}
    assert outcome.customers["cust-7"] == replace(current, consent_sms=False, updated_at=at(10))


def test_a_customer_id_on_a_cart_event_links_the_cart_and_merges_the_customer() -> None:
    """The platform's customer id becomes the cart's key and its contact details are stored."""
    event = cart_updated(at(10), customer={"id": "cust-7", "email": "c@example.com", "first_name": "Claire"})
    outcome = apply([event], carts={CART: existing_cart()})
    assert outcome.carts[CART].customer_key == "cust-7"
    customer = outcome.customers["cust-7"]
    assert (customer.email, customer.first_name, customer.updated_at) == ("c@example.com", "Claire", at(10))


@pytest.mark.parametrize(
    ("cart_id", "customer", "current", "expected"),
    [
        pytest.param("c1", Customer(id="cust-7"), None, "cust-7", id="customer id wins"),
        pytest.param("c1", Customer(id="cust-7"), "cart:c1", "cust-7", id="customer id replaces cart key"),
        pytest.param("c1", Customer(email="a@b.c"), "cust-3", "cust-3", id="no id keeps the current key"),
        pytest.param("c1", None, None, "cart:c1", id="anonymous cart keys itself"),
    ],
)
def test_customer_key_of(cart_id: str, customer: Customer | None, current: str | None, expected: str) -> None:
    """The key is the platform's customer id, else the cart's current key, else ``cart:<cart_id>``."""
    assert customer_key_of(cart_id, customer, current) == expected


BEFORE = CustomerState(
    customer_key="cust-7",
    email="old@example.com",
    phone=None,
    first_name="Claire",
    consent_email=True,
    consent_sms=None,
    updated_at=at(10),
)


@pytest.mark.parametrize(
    ("incoming", "occurred_at", "expected"),
    [
        pytest.param(
            Customer(email="new@example.com", phone="+33600000000"),
            at(11),
            replace(BEFORE, email="new@example.com", phone="+33600000000", updated_at=at(11)),
            id="newer values win",
        ),
        pytest.param(
            Customer(email=None, first_name=None),
            at(11),
            replace(BEFORE, updated_at=at(11)),
            id="newer nulls erase nothing",
        ),
        pytest.param(
            Customer(email="stale@example.com", phone="+33600000000"),
            at(9),
            replace(BEFORE, phone="+33600000000"),
            id="older values only fill gaps",
        ),
        pytest.param(
            Customer(consent={"email": False, "sms": True}),
            at(11),
            replace(BEFORE, consent_email=False, consent_sms=True, updated_at=at(11)),
            id="newer consent wins, including a refusal",
        ),
        pytest.param(
            Customer(consent={"email": False, "sms": True}),
            at(9),
            replace(BEFORE, consent_sms=True),
            id="older consent only fills unknowns",
        ),
        pytest.param(
            Customer(consent={"sms": True}),
            at(11),
            replace(BEFORE, consent_sms=True, updated_at=at(11)),
            id="absent consent keys stay as they were",
        ),
    ],
)
def test_merge_customer(incoming: Customer, occurred_at: datetime, expected: CustomerState) -> None:
    """Newer non-null values win; older ones only fill gaps; ``updated_at`` never goes back."""
    assert merge_customer(BEFORE, "cust-7", incoming, occurred_at) == expected


def test_merge_customer_creates_a_new_customer() -> None:
    """Without a current state the customer starts from the event's values."""
    merged = merge_customer(None, "cust-9", Customer(id="cust-9", locale="fr-FR"), at(10))
    assert merged == CustomerState(customer_key="cust-9", locale="fr-FR", updated_at=at(10))


def test_journey_ids_are_deterministic() -> None:
    """The same flow, cart and trigger time always give the same id; any change gives another."""
    base = journey_id_for("abandoned", CART, at(9))
    assert base == journey_id_for("abandoned", CART, at(9))
    assert len(base) == 32
    assert (
        len(
            {
                base,
                journey_id_for("payment", CART, at(9)),
                journey_id_for("abandoned", "cart-2", at(9)),
                journey_id_for("abandoned", CART, at(9, 1)),
            }
        )
        == 4
    )


def test_replaying_a_batch_gives_the_same_journey_ids() -> None:
    """Processing the same payment failure twice (at different times) names the same journey."""
    first = apply([payment_failed(at(11))]).new_journeys
    later = apply_batch(
        [payment_failed(at(11))],
        rules=RULES,
        carts={},
        customers={},
        active=[],
        last_entries={},
        now=NOW + timedelta(hours=1),
    ).new_journeys
    assert [j.journey_id for j in first] == [j.journey_id for j in later]


def test_start_journeys_for_an_abandoned_cart() -> None:
    """The scheduler's abandonment starts the abandoned flow with its reminder due in an hour."""
    entries: dict[tuple[str, str], datetime] = {}
    [journey] = start_journeys(
        rules=RULES,
        trigger=Trigger.CART_ABANDONED,
        cart=existing_cart(),
        now=NOW,
        trigger_event_at=at(9),
        last_entries=entries,
    )
    assert journey.journey_id == journey_id_for("abandoned", CART, at(9))
    assert [step.due_at for step in journey.steps] == [NOW + timedelta(hours=1)]
    assert entries == {("abandoned", "cart:cart-1"): NOW}


def test_a_payment_failure_older_than_the_carts_latest_event_starts_nothing() -> None:
    """A late-delivered payment.failed (the cart moved on since, at 09:00) starts no payment journey."""
    outcome = apply([payment_failed(at(8, 30))], carts={CART: existing_cart()})
    assert outcome.new_journeys == []


def test_a_future_dated_event_does_not_freeze_the_customer() -> None:
    """An event dated 2099 counts as now: a later, honest event still updates the customer."""
    future = datetime(2099, 1, 1, tzinfo=UTC)
    shopper = {"id": "cust-9", "first_name": "Old", "consent": {"sms": True}}
    first = apply([cart_updated(future, customer=shopper)])
    customers = dict(first.customers)
    assert customers["cust-9"].updated_at == NOW
    later = cart_updated(NOW + timedelta(minutes=1), customer={**shopper, "first_name": "New"})
    outcome = apply_batch(
        [later],
        rules=RULES,
        carts=first.carts,
        customers=customers,
        active=[],
        last_entries={},
        now=NOW + timedelta(minutes=1),
    )
    assert outcome.customers["cust-9"].first_name == "New"


DIRECT_RULES = Rules(
    flows=parse_flows(
        """\
flows:
  - name: payment
    trigger: payment.failed
    steps:
      - {name: retry, after: 2m, channel: sms, template: payment_failed}
      - {name: agent_call, after: 0s, channel: callback, mode: direct}
"""
    ),
    idle_after=IDLE,
    in_holdout=lambda key: False,
)


@pytest.mark.parametrize(
    ("entries", "steps"),
    [
        pytest.param({}, ["retry", "agent_call"], id="first failure: the whole flow"),
        pytest.param({("payment", "cust-7"): NOW - timedelta(days=2)}, ["agent_call"], id="another cart: call only"),
        pytest.param(
            {("payment", "cust-7"): NOW - timedelta(days=2), ("payment", f"cart:{CART}"): NOW - timedelta(days=2)},
            [],
            id="same cart again: nothing",
        ),
    ],
)
def test_a_new_failed_cart_still_gets_the_agents_call_within_reentry(
    entries: dict[tuple[str, str], datetime], steps: list[str]
) -> None:
    """Re-entry keeps the shopper from new messages for 7 days, but a failure on another cart is still called."""
    outcome = apply_batch(
        [payment_failed(at(11), customer={"id": "cust-7"})],
        rules=DIRECT_RULES,
        carts={},
        customers={},
        active=[],
        last_entries=entries,
        now=NOW,
    )
    assert [[step.name for step in journey.steps] for journey in outcome.new_journeys] == ([steps] if steps else [])
