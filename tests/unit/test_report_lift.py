"""Why a lift is not significant yet, in words a marketer can act on."""

from __future__ import annotations

from decimal import Decimal

import pytest

from recovery.attribution.lift import lift
from recovery.attribution.lift_section import why_not_significant


@pytest.mark.parametrize(
    ("treated", "control", "reason"),
    [
        ((400, 120), (400, 40), None),
        ((400, 120), (0, 0), "no holdout journeys: set guards.holdout_percent to measure lift"),
        ((400, 120), (20, 1), "fewer than 30 journeys in a group"),
        ((400, 41), (400, 40), "the 95 % interval includes 0"),
    ],
)
def test_the_reason_names_what_is_missing(
    treated: tuple[int, int], control: tuple[int, int], reason: str | None
) -> None:
    """A clear lift needs no reason; otherwise: no control group, too few journeys, or an interval across 0."""
    result = lift(
        treated_n=treated[0],
        treated_recovered=treated[1],
        control_n=control[0],
        control_recovered=control[1],
        treated_revenue=Decimal(0),
        control_revenue=Decimal(0),
    )
    assert why_not_significant(result, treated_n=treated[0], control_n=control[0]) == reason
