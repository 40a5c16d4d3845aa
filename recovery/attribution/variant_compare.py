"""A/B split results: each variant's conversion with its 95 % interval, and the difference between variants
with its 95 % interval (Wilson and Newcombe, the holdout's maths in ``lift.py``); pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from recovery.attribution.lift import MIN_GROUP_SIZE, newcombe_difference_ci, proportion_ci_wilson


@dataclass(frozen=True, kw_only=True)
class VariantCounts:
    """What one variant of one step did: messages sent, clicked, converted (distinct messages credited)."""

    variant: str
    sent: int
    clicked: int
    converted: int


@dataclass(frozen=True, kw_only=True)
class Difference:
    """``variant`` minus ``baseline`` in conversion, with its interval and what a marketer may conclude."""

    variant: str
    baseline: str
    difference: float
    ci_low: float
    ci_high: float
    significant: bool
    words: str


def conversion(counts: VariantCounts) -> tuple[float, float, float]:
    """Conversion rate (converted / sent) and its 95 % Wilson interval; 0 and (0, 1) before any send."""
    converted = min(counts.converted, counts.sent)
    low, high = proportion_ci_wilson(converted, counts.sent)
    return (converted / counts.sent if counts.sent else 0.0), low, high


def compare(variant: VariantCounts, baseline: VariantCounts, *, min_group_size: int = MIN_GROUP_SIZE) -> Difference:
    """``variant``'s conversion minus ``baseline``'s: significant once its interval excludes 0 with enough sends."""
    x1, n1 = min(variant.converted, variant.sent), variant.sent
    x2, n2 = min(baseline.converted, baseline.sent), baseline.sent
    low, high = newcombe_difference_ci(x1, n1, x2, n2)
    difference = (x1 / n1 if n1 else 0.0) - (x2 / n2 if n2 else 0.0)
    big_enough = min(n1, n2) >= max(min_group_size, 1)
    significant = big_enough and (low > 0 or high < 0)
    points = f"{difference * 100:+.1f} points (95 % interval {low * 100:+.1f} to {high * 100:+.1f})"
    if significant:
        better, worse = (variant.variant, baseline.variant) if low > 0 else (baseline.variant, variant.variant)
        words = f"{better} converts better than {worse}: {points}"
    elif not big_enough:
        words = (
            f"not significant yet: {variant.variant} vs {baseline.variant} {points}; "
            f"each variant needs at least {min_group_size} sends"
        )
    else:
        words = f"not significant yet: {variant.variant} vs {baseline.variant} {points} (the interval includes 0)"
    return Difference(
        variant=variant.variant,
        baseline=baseline.variant,
        difference=difference,
        ci_low=low,
        ci_high=high,
        significant=significant,
        words=words,
    )


def compare_all(variants: Sequence[VariantCounts]) -> list[Difference]:
    """Every variant against the first one (the baseline, by name order); nothing with fewer than two."""
    if len(variants) < 2:
        return []
    baseline, *others = variants
    return [compare(other, baseline) for other in others]
