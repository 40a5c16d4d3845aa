"""Funnel indicators from counts, checked against rates worked out by hand."""

from __future__ import annotations

import re
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest

from recovery.attribution.funnel import CHECKOUT_STEPS, FunnelCounts, funnel_rates
from recovery.events import CheckoutStep, PaymentFailureReason

CART, ACCOUNT, ADDRESS, SHIPPING, PAYMENT, REVIEW = CHECKOUT_STEPS

# 1000 carts: 750 abandoned (by last step 200/200/100/100/100/50) and 250 orders.
COUNTS = FunnelCounts(
    carts_created=1000,
    reached={CART: 1000, ACCOUNT: 800, ADDRESS: 600, SHIPPING: 500, PAYMENT: 400, REVIEW: 300},
    abandoned_at={CART: 200, ACCOUNT: 200, ADDRESS: 100, SHIPPING: 100, PAYMENT: 100, REVIEW: 50},
    payment_failures={PaymentFailureReason.CARD_DECLINED: 40, PaymentFailureReason.INSUFFICIENT_FUNDS: 10},
    payment_attempts=500,
    orders=250,
    buyers=200,
    revenue=Decimal("25000.00"),
)
RATES = funnel_rates(COUNTS)


def test_checkout_steps_are_in_the_order_shoppers_go_through_them() -> None:
    """Cart, account, address, shipping, payment, review."""
    assert [str(step) for step in CHECKOUT_STEPS] == [
        "cart",
        "account",
        "address",
        "shipping",
        "payment",
        "review",
    ]


def test_overall_rates_are_shares_of_carts_and_attempts() -> None:
    """750/1000 abandoned, 250/1000 converted, 50/500 payments failed."""
    assert RATES.abandonment_rate == pytest.approx(0.75)
    assert RATES.conversion_rate == pytest.approx(0.25)
    assert RATES.payment_failure_rate == pytest.approx(0.10)


def test_money_indicators_divide_revenue_by_orders_and_buyers() -> None:
    """25 000 over 250 orders is 100 each; over 200 buyers it is 125 each."""
    assert RATES.average_order_value == Decimal("100")
    assert RATES.revenue_per_buyer == Decimal("125")


@pytest.mark.parametrize(
    ("step", "by_last_step", "drop_off"),
    [
        pytest.param(CART, 200 / 1000, 200 / 1000, id="cart"),
        pytest.param(ACCOUNT, 200 / 1000, 200 / 800, id="account"),
        pytest.param(ADDRESS, 100 / 1000, 100 / 600, id="address"),
        pytest.param(SHIPPING, 100 / 1000, 100 / 500, id="shipping"),
        pytest.param(PAYMENT, 100 / 1000, 100 / 400, id="payment"),
        pytest.param(REVIEW, 50 / 1000, 50 / 300, id="review"),
    ],
)
def test_abandonment_by_last_step_is_over_carts_and_drop_off_over_carts_reaching_it(
    step: CheckoutStep, by_last_step: float, drop_off: float
) -> None:
    """Carts abandoned at a step are divided by carts created, and separately by carts that got there."""
    assert RATES.abandonment_rate_by_last_step[step] == pytest.approx(by_last_step)
    assert RATES.drop_off_rate_by_step[step] == pytest.approx(drop_off)


def test_abandonment_by_last_step_adds_up_to_the_overall_rate() -> None:
    """The per-step rates decompose the overall abandonment rate."""
    total = sum(rate or 0.0 for rate in RATES.abandonment_rate_by_last_step.values())
    assert total == pytest.approx(RATES.abandonment_rate)


@pytest.mark.parametrize(
    ("before", "after", "rate"),
    [
        pytest.param(CART, ACCOUNT, 800 / 1000, id="cart->account"),
        pytest.param(ACCOUNT, ADDRESS, 600 / 800, id="account->address"),
        pytest.param(ADDRESS, SHIPPING, 500 / 600, id="address->shipping"),
        pytest.param(SHIPPING, PAYMENT, 400 / 500, id="shipping->payment"),
        pytest.param(PAYMENT, REVIEW, 300 / 400, id="payment->review"),
    ],
)
def test_step_conversion_is_the_share_of_carts_reaching_the_next_step(
    before: CheckoutStep, after: CheckoutStep, rate: float
) -> None:
    """Each consecutive pair of steps has the share of carts that moved on."""
    assert RATES.step_conversion[(before, after)] == pytest.approx(rate)


def test_step_conversion_covers_only_consecutive_steps() -> None:
    """Five transitions between six steps, in checkout order."""
    assert list(RATES.step_conversion) == list(pairwise(CHECKOUT_STEPS))


@pytest.mark.parametrize(
    ("reason", "rate"),
    [
        pytest.param(PaymentFailureReason.CARD_DECLINED, 0.08, id="40/500"),
        pytest.param(PaymentFailureReason.INSUFFICIENT_FUNDS, 0.02, id="10/500"),
    ],
)
def test_payment_failure_rate_by_reason_is_over_all_attempts(reason: PaymentFailureReason, rate: float) -> None:
    """Failures of one reason are divided by every payment attempt, so reasons add up."""
    assert RATES.payment_failure_rate_by_reason[reason] == pytest.approx(rate)


def test_nothing_to_divide_by_gives_none_not_zero() -> None:
    """With no cart, attempt, order or buyer every rate is None rather than a misleading 0 %."""
    rates = funnel_rates(FunnelCounts(carts_created=0, payment_failures={PaymentFailureReason.CARD_DECLINED: 0}))
    assert rates.abandonment_rate is None
    assert rates.conversion_rate is None
    assert rates.payment_failure_rate is None
    assert rates.payment_failure_rate_by_reason == {PaymentFailureReason.CARD_DECLINED: None}
    assert set(rates.abandonment_rate_by_last_step.values()) == {None}
    assert set(rates.drop_off_rate_by_step.values()) == {None}
    assert set(rates.step_conversion.values()) == {None}
    assert rates.average_order_value is None
    assert rates.revenue_per_buyer is None


def test_steps_missing_from_the_counts_count_zero() -> None:
    """A step nobody reached gives 0 onward conversion and None beyond it."""
    rates = funnel_rates(FunnelCounts(carts_created=10, reached={CART: 10}, abandoned_at={CART: 10}))
    assert rates.step_conversion[(CART, ACCOUNT)] == 0.0
    assert rates.step_conversion[(ACCOUNT, ADDRESS)] is None
    assert rates.drop_off_rate_by_step[CART] == 1.0
    assert rates.abandonment_rate_by_last_step[REVIEW] == 0.0


@pytest.mark.parametrize(
    ("field", "counts"),
    [
        pytest.param("carts_created", {"carts_created": -1}, id="carts"),
        pytest.param("orders", {"carts_created": 1, "orders": -1}, id="orders"),
        pytest.param("reached[payment]", {"carts_created": 1, "reached": {PAYMENT: -3}}, id="reached"),
        pytest.param(
            "payment_failures[card_declined]",
            {"carts_created": 1, "payment_failures": {PaymentFailureReason.CARD_DECLINED: -1}},
            id="failures",
        ),
    ],
)
def test_negative_counts_are_refused_with_the_field_name(field: str, counts: dict[str, Any]) -> None:
    """A negative count names the offending field instead of producing a negative rate."""
    with pytest.raises(ValueError, match=re.escape(field)):
        FunnelCounts(**counts)
