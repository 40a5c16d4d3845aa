"""A/B splits and the flow check: stable hashed variants, weights respected, problems named by line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from textwrap import dedent

import pytest

from recovery.rules.flow_check import TemplateCatalogue, catalogue_of, check_flow_source, check_flows_text
from recovery.rules.flow_source import flow_sources
from recovery.rules.flows import Variant
from recovery.rules.variants import assign_variant, resolve_step
from recovery.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HALVES = [Variant(name="short", weight=50, template="a"), Variant(name="classic", weight=50, template="b")]
CATALOGUE = TemplateCatalogue(
    entries=frozenset(
        {(lang, name, "email") for lang in ("en", "fr") for name in ("cart_reminder", "cart_offer")}
        | {("en", "cart_reminder_short", "email")}
    )
)

SPLIT = """\
name: abandoned_cart
trigger: cart.abandoned
steps:
  - name: reminder
    after: 1h
    channel: email
    variants:
      - {name: short, weight: 50, template: cart_offer}
      - {name: classic, weight: 50, template: cart_reminder}
"""


@pytest.mark.parametrize(
    ("journey", "step"), [("j-1", "reminder"), ("j-2", "reminder"), ("0" * 32, "offer"), ("x", "")]
)
def test_the_same_journey_and_step_always_get_the_same_variant(journey: str, step: str) -> None:
    """A replay or a retry keeps the variant: the choice is a hash, not a coin per message."""
    first = assign_variant(journey, step, HALVES)
    assert all(assign_variant(journey, step, HALVES) == first for _ in range(20))


@pytest.mark.parametrize(
    "weights",
    [(50, 50), (90, 10), (1, 1, 2), (0.5, 0.25, 0.25), (70, 20, 10)],
)
def test_weights_are_respected_within_a_tolerance_over_ten_thousand_journeys(weights: tuple[float, ...]) -> None:
    """Over 10 000 journeys each variant's share is within 2 points of its weight's share."""
    variants = [Variant(name=f"v{i}", weight=w, template="t") for i, w in enumerate(weights)]
    counts = Counter(assign_variant(f"journey-{n}", "reminder", variants).name for n in range(10_000))
    total = sum(weights)
    for index, weight in enumerate(weights):
        assert abs(counts[f"v{index}"] / 10_000 - weight / total) < 0.02


def test_two_steps_of_one_journey_are_split_independently() -> None:
    """The step name is part of the hash: a journey in 'short' at one step is not forced into it at the next."""
    pairs = Counter(
        (assign_variant(f"j{n}", "first", HALVES).name, assign_variant(f"j{n}", "second", HALVES).name)
        for n in range(4000)
    )
    assert len(pairs) == 4 and min(pairs.values()) > 800


def test_a_split_step_sends_its_variants_template_and_names_the_variant() -> None:
    """The resolved step carries the variant's template; a plain step is left as it is with no variant."""
    flow, problems = check_flow_source(SPLIT, name="abandoned_cart", catalogue=CATALOGUE, settings=None)
    assert flow is not None and problems == []
    resolved, variant = resolve_step("j-1", flow.steps[0])
    assert variant in ("short", "classic")
    assert resolved.template == {"short": "cart_offer", "classic": "cart_reminder"}[variant]


def _problems(source: str, settings: Settings | None = None) -> list[tuple[int, str]]:
    flow, problems = check_flow_source(source, name="abandoned_cart", catalogue=CATALOGUE, settings=settings)
    assert flow is None, "the check should refuse this flow"
    return [(problem.line, problem.message) for problem in problems]


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("weight: 50, template: cart_offer", "weight: 0, template: cart_offer"), 8, "greater than 0"),
        (("weight: 50, template: cart_offer", "weight: -3, template: cart_offer"), 8, "greater than 0"),
        (("template: cart_offer", "template: cart_ofer"), 8, "unknown template 'cart_ofer'"),
        (("template: cart_offer", "template: cart_reminder_short"), 8, "no email version in fr"),
        (("channel: email", "channel: pigeon"), 6, "channel"),
        (("after: 1h", "after: 1 hour"), 5, "after"),
        (("    after: 1h\n", '    after: 1h\n    when: "cart.value >="\n'), 6, "invalid condition"),
    ],
)
def test_the_flow_check_names_the_line_of_each_problem(change: tuple[str, str], line: int, words: str) -> None:
    """Weights ≤ 0, unknown templates or channels, a variant missing in a language, bad durations and `when`."""
    problems = _problems(SPLIT.replace(*change, 1))
    assert any(found_line == line and words in message for found_line, message in problems), problems


def test_a_channel_without_provider_settings_is_named_at_its_line() -> None:
    """With real providers and no Twilio account, an SMS step is refused at its channel's line."""
    settings = Settings(channels={"transport": "providers"})
    source = "name: abandoned_cart\ntrigger: cart.abandoned\nsteps:\n  - name: r\n    after: 1h\n"
    problems = _problems(source + "    channel: sms\n    template: cart_offer\n", settings)
    assert problems and all(line == 6 for line, _ in problems)
    assert any("channels.sms.account_sid" in message for _, message in problems)


def test_a_source_saved_under_another_name_is_refused_at_its_name_line() -> None:
    """The URL's name and the YAML's name must agree."""
    flow, problems = check_flow_source(SPLIT, name="other", catalogue=CATALOGUE, settings=None)
    assert flow is None and problems[0].line == 1


def test_offers_are_a_percentage_or_free_shipping() -> None:
    """`{free_shipping: true}` is an offer; naming both kinds, or neither, is refused at the offer's line."""
    base = SPLIT.replace("    variants:", "    offer: OFFER\n    variants:")
    ok, problems = check_flow_source(
        base.replace("OFFER", "{free_shipping: true, valid_for: 48h}"),
        name="abandoned_cart",
        catalogue=CATALOGUE,
        settings=None,
    )
    assert ok is not None and ok.steps[0].offer is not None and ok.steps[0].offer.free_shipping, problems
    for bad in ("{percent: 10, free_shipping: true}", "{valid_for: 48h}"):
        assert any(line == 7 and "exactly one" in message for line, message in _problems(base.replace("OFFER", bad)))


def test_the_shipped_flows_pass_the_same_check_and_answer_feedback() -> None:
    """config/flows.yaml passes; it answers shipping_cost with free shipping and account_required by email."""
    text = (ROOT / "config" / "flows.yaml").read_text(encoding="utf-8")
    flows, problems = check_flows_text(text, catalogue=catalogue_of(ROOT / "templates"), settings=None)
    assert flows is not None, problems
    steps = {step.name: step for step in flows.flows[0].steps}
    assert steps["free_shipping"].offer is not None and steps["free_shipping"].offer.free_shipping
    assert "shipping_cost" in (steps["free_shipping"].when or "")
    assert "account_required" in (steps["guest_checkout"].when or "")


def test_each_flow_of_the_file_is_its_own_source_with_its_comments() -> None:
    """Version 0 of a flow is its part of the file: it passes the check on its own, comments kept."""
    sources = flow_sources((ROOT / "config" / "flows.yaml").read_text(encoding="utf-8"))
    assert set(sources) == {"abandoned_cart", "payment_failed"}
    assert "# delay from the trigger" in sources["abandoned_cart"]
    for name, source in sources.items():
        flow, problems = check_flow_source(source, name=name, catalogue=catalogue_of(ROOT / "templates"), settings=None)
        assert flow is not None, (name, problems)


def test_a_whole_file_reports_lines_of_the_file() -> None:
    """The file check (recovery check) reports the line in the file, not in one flow."""
    text = dedent(
        """\
        flows:
          - name: abandoned_cart
            trigger: cart.abandoned
            steps:
              - name: reminder
                after: 1h
                channel: email
                variants:
                  - {name: short, weight: 0, template: cart_offer}
                  - {name: classic, weight: 50, template: cart_reminder}
        """
    )
    flows, problems = check_flows_text(text, catalogue=CATALOGUE, settings=None)
    assert flows is None and problems[0].line == 9, problems
