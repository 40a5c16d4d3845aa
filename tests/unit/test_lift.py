"""Lift maths checked against values computed by hand and against Newcombe (1998)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.attribution.lift import LiftVerdict, lift, newcombe_difference_ci, proportion_ci_wilson

# Wilson: with p = x/n and z = 1.96 (z² = 3.8416),
#   d = 1 + z²/n,  centre = (p + z²/2n) / d,  half = z/d * sqrt(p(1-p)/n + z²/4n²).
#
# 0/10:   d = 1.38416; centre = 0.19208 / 1.38416 = 0.138770;
#         half = 1.96 / 1.38416 * sqrt(3.8416 / 400) = 1.416021 * 0.098 = 0.138770  -> (0, 0.277540)
# 10/10:  mirror image of 0/10: centre = 1 - 0.138770 = 0.861230                -> (0.722460, 1)
# 81/263: p = 0.307985, z²/n = 0.014607, d = 1.014607;
#         centre = (0.307985 + 0.007303) / 1.014607 = 0.310749;
#         half = 1.931782 * sqrt(0.00081039 + 0.00001389) = 0.055462             -> (0.255288, 0.366211)
#         Newcombe (1998, single proportion) prints 0.2553 to 0.3662 for method 3.
WILSON_CASES = [
    pytest.param(0, 10, 0.0, 0.277540, id="0/10"),
    pytest.param(10, 10, 0.722460, 1.0, id="10/10"),
    pytest.param(81, 263, 0.255288, 0.366211, id="81/263"),
    pytest.param(0, 0, 0.0, 1.0, id="0/0 knows nothing"),
]


@pytest.mark.parametrize(("successes", "n", "low", "high"), WILSON_CASES)
def test_wilson_interval_matches_the_hand_computed_bounds(
    successes: int, n: int, low: float, high: float
) -> None:
    """The Wilson interval equals the bounds worked out in the comment above to six decimals."""
    ci_low, ci_high = proportion_ci_wilson(successes, n)
    assert ci_low == pytest.approx(low, abs=1e-6)
    assert ci_high == pytest.approx(high, abs=1e-6)


def test_wilson_interval_is_exactly_0_or_1_at_the_extremes() -> None:
    """0/n starts at exactly 0 and n/n ends at exactly 1, without floating-point dust."""
    assert proportion_ci_wilson(0, 7)[0] == 0.0
    assert proportion_ci_wilson(7, 7)[1] == 1.0


# Newcombe (1998), "Interval estimation for the difference between independent proportions",
# Statistics in Medicine 17:873-890, Table II, method 10 (hybrid score, no continuity correction).
# Worked for (a) 56/70 - 48/80 = 0.8 - 0.6 = 0.2, with the Wilson bounds of each group:
#   56/70 -> (0.691831, 0.876954)     48/80 -> (0.490453, 0.700383)
#   delta = sqrt((0.8 - 0.691831)² + (0.700383 - 0.6)²) = sqrt(0.108169² + 0.100383²) = 0.147571
#   eps   = sqrt((0.876954 - 0.8)² + (0.6 - 0.490453)²) = sqrt(0.076954² + 0.109547²) = 0.133875
#   CI = (0.2 - 0.147571, 0.2 + 0.133875) = (0.0524, 0.3339), as printed in the paper.
NEWCOMBE_CASES = [
    pytest.param(56, 70, 48, 80, 0.0524, 0.3339, id="(a) 56/70-48/80"),
    pytest.param(9, 10, 3, 10, 0.1705, 0.8090, id="(b) 9/10-3/10"),
    pytest.param(5, 56, 0, 29, -0.0381, 0.1926, id="(d) 5/56-0/29"),
    pytest.param(0, 10, 0, 10, -0.2775, 0.2775, id="(f) 0/10-0/10"),
    pytest.param(10, 10, 0, 20, 0.6791, 1.0, id="(g) 10/10-0/20"),
]


@pytest.mark.parametrize(("x1", "n1", "x2", "n2", "low", "high"), NEWCOMBE_CASES)
def test_newcombe_interval_reproduces_the_papers_table(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    """Method 10 gives the four-decimal bounds of Newcombe's Table II."""
    ci_low, ci_high = newcombe_difference_ci(x1, n1, x2, n2)
    assert round(ci_low, 4) == low
    assert round(ci_high, 4) == high


@pytest.mark.parametrize(("n1", "n2"), [(0, 10), (10, 0), (0, 0)])
def test_newcombe_interval_of_an_empty_group_is_everything(n1: int, n2: int) -> None:
    """With a group of size 0 the difference can be anything from -1 to 1."""
    assert newcombe_difference_ci(0, n1, 0, n2) == (-1.0, 1.0)


@pytest.mark.parametrize(("successes", "n"), [(-1, 10), (11, 10), (0, -1)])
def test_impossible_counts_are_refused(successes: int, n: int) -> None:
    """Negative sizes and more successes than trials raise instead of giving a plausible number."""
    with pytest.raises(ValueError, match="successes"):
        proportion_ci_wilson(successes, n)
    with pytest.raises(ValueError, match="successes"):
        newcombe_difference_ci(successes, n, 1, 10)


@given(st.integers(min_value=1, max_value=5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_holds_the_observed_rate_within_0_and_1(case: tuple[int, int]) -> None:
    """Whatever the counts, 0 <= low <= x/n <= high <= 1."""
    successes, n = case
    low, high = proportion_ci_wilson(successes, n)
    assert 0.0 <= low <= successes / n <= high <= 1.0


def test_lift_of_newcombes_example_is_a_significant_lift() -> None:
    """56/70 treated vs 48/80 control: +0.2 absolute, +1/3 relative, CI (0.0524, 0.3339) excludes 0."""
    result = lift(
        treated_n=70,
        treated_recovered=56,
        control_n=80,
        control_recovered=48,
        treated_revenue=Decimal("5600.00"),
        control_revenue=Decimal("4800.00"),
    )
    assert result.treated_rate == pytest.approx(0.8)
    assert result.control_rate == pytest.approx(0.6)
    assert result.absolute_lift == pytest.approx(0.2)
    assert result.relative_lift == pytest.approx(0.2 / 0.6)
    assert (round(result.ci_low, 4), round(result.ci_high, 4)) == (0.0524, 0.3339)
    assert result.significant
    assert result.verdict is LiftVerdict.SIGNIFICANT_LIFT
    # Control earns 4800 / 80 = 60 per journey; 70 treated journeys would earn 4200 anyway: 5600 - 4200.
    assert result.incremental_revenue == Decimal("1400")


def test_treated_group_recovering_less_is_a_significant_drop() -> None:
    """Swapping the groups of Newcombe's example gives CI (-0.3339, -0.0524): messages hurt."""
    result = lift(
        treated_n=80,
        treated_recovered=48,
        control_n=70,
        control_recovered=56,
        treated_revenue=Decimal("4800"),
        control_revenue=Decimal("5600"),
    )
    assert (round(result.ci_low, 4), round(result.ci_high, 4)) == (-0.3339, -0.0524)
    assert result.significant
    assert result.verdict is LiftVerdict.SIGNIFICANT_DROP
    # 4800 - 5600 * 80 / 70 = 4800 - 6400
    assert result.incremental_revenue == Decimal("-1600")


def test_lift_whose_interval_contains_zero_is_not_significant_yet() -> None:
    """30/100 vs 25/100 is a +5 point lift whose CI straddles 0."""
    result = lift(
        treated_n=100,
        treated_recovered=30,
        control_n=100,
        control_recovered=25,
        treated_revenue=Decimal("3000"),
        control_revenue=Decimal("2500"),
    )
    assert result.ci_low < 0 < result.ci_high
    assert not result.significant
    assert result.verdict == "not significant yet"


def test_small_groups_are_not_significant_yet_even_when_the_interval_excludes_zero() -> None:
    """10/10 vs 0/10 has CI (0.6075, 1) but ten journeys a side are too few to call."""
    result = lift(
        treated_n=10,
        treated_recovered=10,
        control_n=10,
        control_recovered=0,
        treated_revenue=Decimal("1000"),
        control_revenue=Decimal("0"),
    )
    assert round(result.ci_low, 4) == 0.6075
    assert not result.significant
    assert result.verdict is LiftVerdict.NOT_SIGNIFICANT_YET


def test_minimum_group_size_can_be_lowered() -> None:
    """With min_group_size=10 the same 10/10 vs 0/10 becomes a significant lift."""
    result = lift(
        treated_n=10,
        treated_recovered=10,
        control_n=10,
        control_recovered=0,
        treated_revenue=Decimal("1000"),
        control_revenue=Decimal("0"),
        min_group_size=10,
    )
    assert result.significant
    assert result.verdict is LiftVerdict.SIGNIFICANT_LIFT


def test_zero_control_rate_leaves_relative_lift_undefined() -> None:
    """A control group that recovered nothing has no rate to divide by."""
    result = lift(
        treated_n=50,
        treated_recovered=5,
        control_n=50,
        control_recovered=0,
        treated_revenue=Decimal("500"),
        control_revenue=Decimal("0"),
    )
    assert result.absolute_lift == pytest.approx(0.1)
    assert result.relative_lift is None
    assert result.incremental_revenue == Decimal("500")


ZERO_SIZED_CASES = [
    pytest.param(0, 0, 0, 0, Decimal("0"), Decimal("0"), None, id="both groups empty"),
    pytest.param(100, 10, 0, 0, Decimal("900"), Decimal("0"), None, id="no control journey"),
    pytest.param(0, 0, 100, 10, Decimal("0"), Decimal("900"), Decimal("0"), id="no treated journey"),
]


@pytest.mark.parametrize(
    ("treated_n", "treated_recovered", "control_n", "control_recovered", "t_rev", "c_rev", "incremental"),
    ZERO_SIZED_CASES,
)
def test_empty_groups_give_no_division_by_zero_and_no_verdict(
    treated_n: int,
    treated_recovered: int,
    control_n: int,
    control_recovered: int,
    t_rev: Decimal,
    c_rev: Decimal,
    incremental: Decimal | None,
) -> None:
    """An empty group has rate 0, no lift, the widest CI, and the verdict "not significant yet"."""
    result = lift(
        treated_n=treated_n,
        treated_recovered=treated_recovered,
        control_n=control_n,
        control_recovered=control_recovered,
        treated_revenue=t_rev,
        control_revenue=c_rev,
    )
    assert (result.ci_low, result.ci_high) == (-1.0, 1.0)
    assert not result.significant
    assert result.verdict is LiftVerdict.NOT_SIGNIFICANT_YET
    assert result.incremental_revenue == incremental
    assert result.treated_rate == (treated_recovered / treated_n if treated_n else 0.0)
    assert result.control_rate == (control_recovered / control_n if control_n else 0.0)
    assert result.absolute_lift == 0.0
    assert result.relative_lift is None
