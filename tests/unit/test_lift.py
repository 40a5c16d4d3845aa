"""Lift maths checked against values computed by hand and against Newcombe (1998)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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
def test_wilson_interval_matches_the_hand_computed_bounds(successes: int, n: int, low: float, high: float) -> None:
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


def groups(tn: int, tr: int, cn: int, cr: int, t_rev: str, c_rev: str, **extra: Any) -> dict[str, Any]:
    """``lift``'s arguments: treated and control journeys, recovered journeys and revenue."""
    counts = {"treated_n": tn, "treated_recovered": tr, "control_n": cn, "control_recovered": cr}
    return counts | {"treated_revenue": Decimal(t_rev), "control_revenue": Decimal(c_rev)} | extra


NO_VERDICT = {
    "ci": (-1.0, 1.0),
    "verdict": LiftVerdict.NOT_SIGNIFICANT_YET,
    "absolute_lift": 0.0,
    "relative_lift": None,
}
LIFT_CASES = [
    pytest.param(
        groups(70, 56, 80, 48, "5600.00", "4800.00"),
        # Control earns 4800 / 80 = 60 per journey; 70 treated journeys would earn 4200 anyway: 5600 - 4200.
        {"treated_rate": 0.8, "control_rate": 0.6, "absolute_lift": 0.2, "relative_lift": 0.2 / 0.6}
        | {"ci": (0.0524, 0.3339), "verdict": LiftVerdict.SIGNIFICANT_LIFT, "incremental_revenue": Decimal("1400")},
        id="Newcombe's 56/70 vs 48/80: +0.2, a significant lift",
    ),
    pytest.param(
        groups(80, 48, 70, 56, "4800", "5600"),
        # 4800 - 5600 * 80 / 70 = 4800 - 6400
        {"ci": (-0.3339, -0.0524), "verdict": LiftVerdict.SIGNIFICANT_DROP, "incremental_revenue": Decimal("-1600")},
        id="the groups swapped: messages hurt, a significant drop",
    ),
    pytest.param(
        groups(100, 30, 100, 25, "3000", "2500"),
        {"absolute_lift": 0.05, "straddles_zero": True, "verdict": LiftVerdict.NOT_SIGNIFICANT_YET},
        id="30/100 vs 25/100: the interval straddles 0, not significant yet",
    ),
    pytest.param(
        groups(10, 10, 10, 0, "1000", "0"),
        {"ci": (0.6075, 1.0), "verdict": LiftVerdict.NOT_SIGNIFICANT_YET},
        id="10/10 vs 0/10 excludes 0 but ten journeys a side are too few to call",
    ),
    pytest.param(
        groups(10, 10, 10, 0, "1000", "0", min_group_size=10),
        {"verdict": LiftVerdict.SIGNIFICANT_LIFT},
        id="the same with min_group_size=10 is a significant lift",
    ),
    pytest.param(
        groups(50, 5, 50, 0, "500", "0"),
        {"absolute_lift": 0.1, "relative_lift": None, "incremental_revenue": Decimal("500")},
        id="a control that recovered nothing leaves the relative lift undefined",
    ),
    pytest.param(
        groups(0, 0, 0, 0, "0", "0"),
        NO_VERDICT | {"treated_rate": 0.0, "control_rate": 0.0, "incremental_revenue": None},
        id="both groups empty: no division by zero, no verdict",
    ),
    pytest.param(
        groups(100, 10, 0, 0, "900", "0"),
        NO_VERDICT | {"treated_rate": 0.1, "control_rate": 0.0, "incremental_revenue": None},
        id="no control journey: no verdict",
    ),
    pytest.param(
        groups(0, 0, 100, 10, "0", "900"),
        NO_VERDICT | {"treated_rate": 0.0, "control_rate": 0.1, "incremental_revenue": Decimal("0")},
        id="no treated journey: no verdict",
    ),
]


@pytest.mark.parametrize(("arguments", "expected"), LIFT_CASES)
def test_lift_gives_the_figures_and_verdict_worked_out_by_hand(
    arguments: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Rates, lifts, the Newcombe interval (four decimals), the verdict and the incremental revenue."""
    result = lift(**arguments)
    for name, value in expected.items():
        if name == "ci":
            assert (round(result.ci_low, 4), round(result.ci_high, 4)) == value
        elif name == "straddles_zero":
            assert (result.ci_low < 0 < result.ci_high) is value
        elif isinstance(value, float):
            assert getattr(result, name) == pytest.approx(value), name
        else:
            assert getattr(result, name) == value, name
    verdict = expected.get("verdict", result.verdict)
    assert result.significant == (verdict is not LiftVerdict.NOT_SIGNIFICANT_YET)
