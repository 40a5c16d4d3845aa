"""Checkout funnel indicators computed from counts: where carts stop, why payments fail, what converts.

Every rate over an empty denominator is ``None``, never 0: "no cart reached payment" is not
"no payment failed", and a report should show a dash rather than a reassuring 0 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise

from recovery.events import CheckoutStep, PaymentFailureReason

# The funnel's order is the declaration order of the event contract's enum.
CHECKOUT_STEPS: tuple[CheckoutStep, ...] = tuple(CheckoutStep)


@dataclass(frozen=True, kw_only=True)
class FunnelCounts:
    """Counts over one period; a step missing from a mapping counts 0.

    ``reached[step]`` counts carts that got to at least that step (``reached[CART]`` is normally
    ``carts_created``); ``abandoned_at[step]`` counts abandoned carts whose last step was ``step``.
    """

    carts_created: int
    reached: Mapping[CheckoutStep, int] = field(default_factory=dict)
    abandoned_at: Mapping[CheckoutStep, int] = field(default_factory=dict)
    payment_failures: Mapping[PaymentFailureReason, int] = field(default_factory=dict)
    payment_attempts: int = 0
    orders: int = 0
    buyers: int = 0
    revenue: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        counts: list[tuple[str, int]] = [
            ("carts_created", self.carts_created),
            ("payment_attempts", self.payment_attempts),
            ("orders", self.orders),
            ("buyers", self.buyers),
            *((f"reached[{s}]", n) for s, n in self.reached.items()),
            *((f"abandoned_at[{s}]", n) for s, n in self.abandoned_at.items()),
            *((f"payment_failures[{r}]", n) for r, n in self.payment_failures.items()),
        ]
        for name, value in counts:
            if value < 0:
                raise ValueError(f"FunnelCounts.{name} is {value}: counts cannot be negative")


@dataclass(frozen=True, kw_only=True)
class FunnelRates:
    """Funnel indicators as fractions in [0, 1] (``None`` when nothing was there to count)."""

    abandonment_rate: float | None
    abandonment_rate_by_last_step: Mapping[CheckoutStep, float | None]
    drop_off_rate_by_step: Mapping[CheckoutStep, float | None]
    step_conversion: Mapping[tuple[CheckoutStep, CheckoutStep], float | None]
    payment_failure_rate: float | None
    payment_failure_rate_by_reason: Mapping[PaymentFailureReason, float | None]
    conversion_rate: float | None
    average_order_value: Decimal | None
    revenue_per_buyer: Decimal | None


def funnel_rates(counts: FunnelCounts) -> FunnelRates:
    """Turn funnel counts into the rates a marketer reads.

    ``abandonment_rate_by_last_step`` is over carts created, so its values add up to
    ``abandonment_rate``; ``drop_off_rate_by_step`` is over the carts that reached that step.
    """
    created = counts.carts_created
    reached = {step: counts.reached.get(step, 0) for step in CHECKOUT_STEPS}
    abandoned = {step: counts.abandoned_at.get(step, 0) for step in CHECKOUT_STEPS}
    attempts = counts.payment_attempts
    return FunnelRates(
        abandonment_rate=_rate(sum(abandoned.values()), created),
        abandonment_rate_by_last_step={step: _rate(abandoned[step], created) for step in CHECKOUT_STEPS},
        drop_off_rate_by_step={step: _rate(abandoned[step], reached[step]) for step in CHECKOUT_STEPS},
        step_conversion={
            (before, after): _rate(reached[after], reached[before]) for before, after in pairwise(CHECKOUT_STEPS)
        },
        payment_failure_rate=_rate(sum(counts.payment_failures.values()), attempts),
        payment_failure_rate_by_reason={
            reason: _rate(failures, attempts) for reason, failures in counts.payment_failures.items()
        },
        conversion_rate=_rate(counts.orders, created),
        average_order_value=counts.revenue / counts.orders if counts.orders else None,
        revenue_per_buyer=counts.revenue / counts.buyers if counts.buyers else None,
    )


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None
