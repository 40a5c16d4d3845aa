"""Would those shoppers have bought anyway? Recovery lift of a treated group over a holdout control group.

Intervals are Wilson score intervals for one rate and Newcombe's hybrid score interval (method 10 of
Newcombe 1998, *Statistics in Medicine* 17:873-890) for the difference of two rates: both behave at
rates near 0 or 1 and at small sizes, where the textbook Wald interval does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

Z_95 = 1.96
MIN_GROUP_SIZE = 30


class LiftVerdict(StrEnum):
    """What a marketer may conclude from a lift measurement."""

    NOT_SIGNIFICANT_YET = "not significant yet"
    SIGNIFICANT_LIFT = "significant lift"
    SIGNIFICANT_DROP = "significant drop"


@dataclass(frozen=True, kw_only=True)
class Lift:
    """Recovery rates of treated and control journeys, their difference and what it is worth.

    Rates of an empty group are 0.0 and the lift against it is 0.0 (``relative_lift`` ``None``);
    ``relative_lift`` is also ``None`` when the control rate is 0, and ``incremental_revenue`` is
    ``None`` when there is no control journey to compare with.
    """

    treated_rate: float
    control_rate: float
    absolute_lift: float
    relative_lift: float | None
    ci_low: float
    ci_high: float
    significant: bool
    incremental_revenue: Decimal | None
    verdict: LiftVerdict


def proportion_ci_wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for ``successes / n``; ``(0.0, 1.0)`` when ``n`` is 0 (nothing is known)."""
    _check_counts(successes, n)
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half_width = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # The exact bounds at 0/n and n/n are 0 and 1; floating point would give -1e-17 or 1 - 1e-16.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == n else min(1.0, centre + half_width)
    return (low, high)


def newcombe_difference_ci(x1: int, n1: int, x2: int, n2: int, z: float = Z_95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``x1/n1 - x2/n2``; ``(-1.0, 1.0)`` if either group is empty."""
    _check_counts(x1, n1)
    _check_counts(x2, n2)
    if n1 == 0 or n2 == 0:
        return (-1.0, 1.0)
    p1, p2 = x1 / n1, x2 / n2
    low1, high1 = proportion_ci_wilson(x1, n1, z)
    low2, high2 = proportion_ci_wilson(x2, n2, z)
    difference = p1 - p2
    low = difference - math.hypot(p1 - low1, high2 - p2)
    high = difference + math.hypot(high1 - p1, p2 - low2)
    return (max(-1.0, low), min(1.0, high))


def lift(
    *,
    treated_n: int,
    treated_recovered: int,
    control_n: int,
    control_recovered: int,
    treated_revenue: Decimal,
    control_revenue: Decimal,
    z: float = Z_95,
    min_group_size: int = MIN_GROUP_SIZE,
) -> Lift:
    """Lift of treated over control journeys: significant once the CI excludes 0 and both groups are big."""
    _check_counts(treated_recovered, treated_n)
    _check_counts(control_recovered, control_n)
    treated_rate = treated_recovered / treated_n if treated_n else 0.0
    control_rate = control_recovered / control_n if control_n else 0.0
    # The 0.0 rate of an empty group is a placeholder, not a measurement: no lift against it.
    absolute = treated_rate - control_rate if treated_n and control_n else 0.0
    ci_low, ci_high = newcombe_difference_ci(treated_recovered, treated_n, control_recovered, control_n, z)
    # A CI from a handful of journeys can exclude 0 by luck of a few orders; wait for enough of them.
    big_enough = min(treated_n, control_n) >= max(min_group_size, 1)
    significant = big_enough and (ci_low > 0 or ci_high < 0)
    if not significant:
        verdict = LiftVerdict.NOT_SIGNIFICANT_YET
    elif ci_low > 0:
        verdict = LiftVerdict.SIGNIFICANT_LIFT
    else:
        verdict = LiftVerdict.SIGNIFICANT_DROP
    return Lift(
        treated_rate=treated_rate,
        control_rate=control_rate,
        absolute_lift=absolute,
        relative_lift=absolute / control_rate if control_rate and treated_n else None,
        ci_low=ci_low,
        ci_high=ci_high,
        significant=significant,
        incremental_revenue=_incremental_revenue(treated_n, control_n, treated_revenue, control_revenue),
        verdict=verdict,
    )


def _incremental_revenue(
    treated_n: int, control_n: int, treated_revenue: Decimal, control_revenue: Decimal
) -> Decimal | None:
    """Treated revenue minus what the control group's revenue per journey predicts for ``treated_n``."""
    if control_n == 0:
        return None
    # Multiply before dividing so whole-currency inputs with a divisible control_n stay exact.
    return treated_revenue - control_revenue * treated_n / control_n


def _check_counts(successes: int, n: int) -> None:
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}: need 0 <= successes <= n")
