"""Honest A/B results: conversion intervals and the difference between variants, in numbers and in words."""

from __future__ import annotations

import pytest

from recovery.attribution.variant_compare import VariantCounts, compare, compare_all, conversion


def counts(name: str, sent: int, converted: int) -> VariantCounts:
    return VariantCounts(variant=name, sent=sent, clicked=converted, converted=converted)


@pytest.mark.parametrize(
    ("sent", "converted", "rate", "low", "high"),
    [
        # Wilson 95 % intervals (reference values computed independently, to 3 decimals).
        (100, 10, 0.10, 0.055, 0.174),
        (1000, 50, 0.05, 0.038, 0.065),
        (20, 0, 0.0, 0.0, 0.161),
        (20, 20, 1.0, 0.839, 1.0),
        (0, 0, 0.0, 0.0, 1.0),
    ],
)
def test_conversion_has_its_wilson_interval(sent: int, converted: int, rate: float, low: float, high: float) -> None:
    """Each variant's conversion comes with its 95 % interval; before any send nothing is known (0 to 1)."""
    found = conversion(counts("a", sent, converted))
    assert found == pytest.approx((rate, low, high), abs=1e-3)


@pytest.mark.parametrize(
    ("a", "b", "difference", "low", "high", "significant", "words"),
    [
        # Newcombe 1998 (Statistics in Medicine 17:873), method 10, his published examples (a), (d) to (f).
        ((70, 56), (80, 48), 0.2, 0.0524, 0.3339, True, "a converts better than b"),
        ((80, 48), (70, 56), -0.2, -0.3339, -0.0524, True, "b converts better than a"),
        ((56, 5), (29, 0), 5 / 56, -0.0381, 0.1926, False, "not significant yet"),
        ((10, 0), (20, 0), 0.0, -0.1611, 0.2775, False, "needs at least 30 sends"),
        ((10, 0), (10, 0), 0.0, -0.2775, 0.2775, False, "not significant yet"),
        # Example (b), 9/10 vs 3/10: the interval excludes 0, but ten sends each are too few to say so.
        ((10, 9), (10, 3), 0.6, 0.1705, 0.8090, False, "needs at least 30 sends"),
    ],
)
def test_the_difference_between_variants_has_its_newcombe_interval(
    a: tuple[int, int],
    b: tuple[int, int],
    difference: float,
    low: float,
    high: float,
    significant: bool,
    words: str,
) -> None:
    """The difference and its interval; significant only when it excludes 0 with enough sends, said in words."""
    found = compare(counts("a", *a), counts("b", *b))
    assert (found.difference, found.ci_low, found.ci_high) == pytest.approx((difference, low, high), abs=1e-3)
    assert found.significant is significant
    assert words in found.words


def test_every_variant_is_compared_with_the_first() -> None:
    """Three variants give two differences, both against the baseline; one variant gives none."""
    found = compare_all([counts("a", 100, 10), counts("b", 100, 20), counts("c", 100, 5)])
    assert [(d.variant, d.baseline) for d in found] == [("b", "a"), ("c", "a")]
    assert compare_all([counts("a", 100, 10)]) == []


def test_the_report_table_gives_each_variant_and_says_when_the_difference_is_not_significant() -> None:
    """`recovery report` prints per step and variant: sent, clicked, orders, conversion with its interval, verdict."""
    import io

    from rich.console import Console

    from recovery.attribution.sections import render_variants

    split = {
        "flow": "abandoned_cart",
        "step": "reminder",
        "variants": [
            {"variant": "classic", "sent": 40, "clicked": 9, "recovered_orders": 4,
             "recovered_revenue": {"EUR": "412.00"}, "conversion": 0.1, "conversion_ci": [0.04, 0.23]},
            {"variant": "short", "sent": 38, "clicked": 7, "recovered_orders": 2, "recovered_revenue": {},
             "conversion": 2 / 38, "conversion_ci": [0.015, 0.17]},
        ],
        "differences": [{"verdict": "not significant yet: short vs classic -4.7 points (95 % interval …)"}],
    }  # fmt: skip
    out = io.StringIO()
    render_variants({"variants": [split]}, Console(file=out, width=140))
    text = out.getvalue()
    assert "A/B split abandoned_cart / reminder" in text
    assert "10.0 %" in text and "4.0 % – 23.0 %" in text
    assert "412.00 EUR" in text and "not significant yet" in text
    from recovery.attribution.sections import variants_html

    page = variants_html({"variants": [split]})
    assert "<svg" in page and "A/B split abandoned_cart / reminder" in page and "not significant yet" in page
    assert "10.0 % [4.0 %, 23.0 %]" in page


def test_the_demo_splits_the_shipped_reminder_and_the_split_passes_the_flow_check() -> None:
    """The demo's marketer saves a 50/50 split of the first reminder; it passes the same check as the API."""
    from pathlib import Path

    from recovery.demo.ab_split import with_split
    from recovery.rules.flow_check import catalogue_of, check_flow_source
    from recovery.rules.flow_source import flow_sources

    root = Path(__file__).resolve().parents[2]
    source = flow_sources((root / "config" / "flows.yaml").read_text(encoding="utf-8"))["abandoned_cart"]
    split = with_split(source)
    assert split is not None
    flow, problems = check_flow_source(
        split, name="abandoned_cart", catalogue=catalogue_of(root / "templates"), settings=None
    )
    assert flow is not None, problems
    assert [v.name for v in flow.steps[0].variants or []] == ["classic", "shipping_info"]


def test_some_demo_shoppers_answer_why_they_left_from_the_reminders_links() -> None:
    """About one emailed shopper in eight clicks one of the reminder's feedback links; no link, no answer."""
    import random

    from recovery.demo.shoppers import feedback_answer

    html = '<a href="http://127.0.0.1:1/f/abc.DEF-1">x</a> <a href="http://127.0.0.1:1/f/xyz_2">y</a>'
    rng = random.Random(3)
    answers = [feedback_answer(rng, html) for _ in range(2000)]
    clicked = [a for a in answers if a is not None]
    assert 150 < len(clicked) < 350
    assert set(clicked) == {"http://127.0.0.1:1/f/abc.DEF-1", "http://127.0.0.1:1/f/xyz_2"}
    assert feedback_answer(rng, "<p>no links</p>") is None
