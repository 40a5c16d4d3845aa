"""Flows as marketers write them: parsing, file:line errors, sandboxed conditions and step planning."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from textwrap import dedent
from typing import Any

import pytest

from recovery.errors import ConfigError
from recovery.rules import Flow, PlannedStep, Trigger, may_enter, parse_flows, plan_steps
from recovery.rules.conditions import Condition, ConditionError
from recovery.states import ChannelName

# The product's flows example (the README's "Flows" shows its first flow), every key spelled out.
SERVICE_EXAMPLE = """\
flows:
  - name: abandoned_cart
    trigger: cart.abandoned            # cart.abandoned | payment.failed
    steps:
      - name: reminder
        after: 1h                      # delay from the trigger
        channel: email                 # email | sms | callback
        template: cart_reminder
        when: "cart.value >= 10"       # optional; a sandboxed Jinja2 expression
      - name: sms_offer
        after: 24h
        channel: sms
        template: cart_offer
        when: "cart.value >= 50 and not journey.clicked"
        offer: {percent: 10, valid_for: 48h}
      - name: call_me
        after: 26h
        channel: callback
        when: "cart.value >= 300"
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 2m, channel: sms, template: payment_failed}
      - {name: agent_call, after: 0s, channel: callback, when: "cart.value >= 200"}
"""
TEMPLATES = ["cart_reminder", "cart_offer", "payment_failed"]
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def flows_text(step: str = "- {name: s, after: 1h, channel: callback}", **flow: str) -> str:
    """One flow ``a`` (line 2) whose single step starts on line 5; ``flow`` overrides flow keys."""
    keys = {"name": "a", "trigger": "cart.abandoned"} | flow
    head = "".join(f"    {key}: {value}\n" for key, value in keys.items() if key != "name")
    return f"flows:\n  - name: {keys['name']}\n{head}    steps:\n" + dedent(step).strip("\n").replace(
        "\n", "\n      "
    ).join(["      ", "\n"])


def test_service_contract_example_parses() -> None:
    """The flows example parses into two flows with their steps, delays and channels."""
    flows = parse_flows(SERVICE_EXAMPLE, templates=TEMPLATES)
    assert [flow.name for flow in flows.flows] == ["abandoned_cart", "payment_failed"]
    abandoned = flows.get("abandoned_cart")
    assert abandoned is not None
    assert abandoned.trigger is Trigger.CART_ABANDONED
    assert [(s.name, s.after, s.channel) for s in abandoned.steps] == [
        ("reminder", timedelta(hours=1), ChannelName.EMAIL),
        ("sms_offer", timedelta(hours=24), ChannelName.SMS),
        ("call_me", timedelta(hours=26), ChannelName.CALLBACK),
    ]
    offer = abandoned.step("sms_offer").offer
    assert offer is not None
    assert (offer.percent, offer.valid_for) == (10, timedelta(hours=48))
    assert abandoned.step("call_me").template is None
    assert abandoned.reentry_after == timedelta(days=7)
    assert [flow.name for flow in flows.for_trigger(Trigger.PAYMENT_FAILED)] == ["payment_failed"]


def test_service_example_conditions_are_compiled() -> None:
    """A step with ``when:`` carries a compiled condition; a step without has none."""
    flows = parse_flows(SERVICE_EXAMPLE)
    payment = flows.get("payment_failed")
    assert payment is not None
    assert payment.step("retry_payment").condition is None
    condition = payment.step("agent_call").condition
    assert condition is not None
    assert condition.evaluate({"cart": {"value": 250}}) is True


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "flows: []\n"])
def test_an_empty_flows_file_has_no_flows(text: str) -> None:
    """An empty file is valid and starts no journeys."""
    assert parse_flows(text).flows == []


def test_disabled_flows_are_not_started_by_their_trigger() -> None:
    """``enabled: false`` keeps the flow in the file but out of ``for_trigger``."""
    flows = parse_flows(flows_text(enabled="false"))
    assert flows.get("a") is not None
    assert flows.for_trigger(Trigger.CART_ABANDONED) == []


INVALID = [
    pytest.param(
        flows_text("- {name: s, after: 1x, channel: callback}"),
        5,
        ["flow 'a': step 's': after:", "'1x' is not a duration", "90s, 30m, 2h, 7d"],
        id="bad duration",
    ),
    pytest.param(
        flows_text(
            """
            - name: s
              after: 1h
              channel: fax
            """
        ),
        7,
        ["flow 'a': step 's': channel:", "'email', 'sms' or 'callback'"],
        id="unknown channel points at the channel line",
    ),
    pytest.param(
        flows_text(
            """
            - name: s
              after: 1h
              channel: email
            """
        ),
        5,
        ["flow 'a': step 's':", "email step needs a 'template'"],
        id="email step without template",
    ),
    pytest.param(
        flows_text("- {name: s, after: 1h, channel: sms}"),
        5,
        ["flow 'a': step 's':", "sms step needs a 'template'"],
        id="sms step without template",
    ),
    pytest.param(
        flows_text("- {name: s, after: 1h, channel: callback}\n- {name: s, after: 2h, channel: callback}"),
        6,
        ["flow 'a': step 's': the name is used by an earlier step"],
        id="duplicate step name points at the repeated step",
    ),
    pytest.param(
        flows_text("- {name: s, after: yes, channel: callback}"),
        5,
        ["flow 'a': step 's': after:", "'true' (YAML yes/no/on/off) is not a duration"],
        id="after: yes is not one second",
    ),
    pytest.param(
        flows_text() + flows_text(trigger="payment.failed").removeprefix("flows:\n"),
        6,
        ["flow 'a': the name is used by an earlier flow"],
        id="duplicate flow name points at the second flow",
    ),
    pytest.param(
        flows_text(
            """
            - name: s
              after: 1h
              channel: callback
              when: "cart.value >= "
            """
        ),
        8,
        ["flow 'a': step 's': when:", "invalid condition 'cart.value >= '"],
        id="bad when syntax points at the when line",
    ),
    pytest.param(
        flows_text("- {name: s, after: -5, channel: callback}"),
        5,
        ["flow 'a': step 's':", "'after' must not be negative"],
        id="negative after in seconds",
    ),
    pytest.param(
        flows_text("- {name: s, after: -1h, channel: callback}"),
        5,
        ["flow 'a': step 's': after:", "'-1h' is not a duration"],
        id="negative after as text",
    ),
    pytest.param(
        flows_text(
            """
            - name: s
              after: 1h
              channel: sms
              template: t
              offer: {percent: 95}
            """
        ),
        9,
        ["flow 'a': step 's': percent:", "less than or equal to 90"],
        id="offer above 90 percent",
    ),
    pytest.param(
        flows_text(
            """
            - name: s
              after: 1h
              channel: callback
              fallback: callback
            """
        ),
        5,
        ["flow 'a': step 's':", "'fallback' must name another channel"],
        id="fallback to the same channel",
    ),
    pytest.param(
        flows_text(
            """
            - name: s
              after: 1h
              delay: 2h
              channel: callback
            """
        ),
        7,
        ["flow 'a': step 's': delay:", "Extra inputs are not permitted"],
        id="unknown step key",
    ),
    pytest.param(
        flows_text(trigger="cart.updated"),
        3,
        ["flow 'a': trigger:", "'cart.abandoned' or 'payment.failed'"],
        id="unknown trigger",
    ),
    pytest.param(
        flows_text(name="'a b'"),
        2,
        ["flow 'a b': name:", "should match pattern"],
        id="flow name with a space",
    ),
    pytest.param(
        "flows:\n  - name: a\n    trigger: cart.abandoned\n    steps: []\n",
        4,
        ["flow 'a':", "at least 1 item"],
        id="flow without steps",
    ),
    pytest.param(
        "flows:\n  - name: a\n    trigger: [cart.abandoned\n",
        4,
        ["not valid YAML"],
        id="broken YAML",
    ),
    pytest.param("flows: 3\n", 1, ["flows:", "valid list"], id="flows is not a list"),
]


@pytest.mark.parametrize(("text", "line", "fragments"), INVALID)
def test_invalid_flows_are_refused_with_file_line_and_reason(text: str, line: int, fragments: list[str]) -> None:
    """Each mistake raises ConfigError starting ``flows.yaml:LINE:`` and saying what is wrong."""
    with pytest.raises(ConfigError) as caught:
        parse_flows(text)
    message = str(caught.value)
    assert message.startswith(f"flows.yaml:{line}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_the_source_name_prefixes_every_problem() -> None:
    """Errors use the given source (the real path) and list one line per problem."""
    text = flows_text(
        """
        - {name: s, after: 1x, channel: callback}
        - {name: t, after: 1h, channel: fax}
        """
    )
    with pytest.raises(ConfigError) as caught:
        parse_flows(text, source="config/flows.yaml")
    lines = str(caught.value).splitlines()
    assert [re.match(r"config/flows\.yaml:(\d+): ", line)[1] for line in lines] == ["5", "6"]  # type: ignore[index]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(flows_text("- {name: s, after: 1h, channel: email}"), id="missing template"),
        pytest.param(
            flows_text("- {name: s, after: 1h, channel: callback}\n- {name: s, after: 2h, channel: callback}"),
            id="duplicate step",
        ),
        pytest.param(flows_text() + flows_text(trigger="payment.failed").removeprefix("flows:\n"), id="duplicate flow"),
    ],
)
def test_model_level_errors_name_a_field_not_a_pydantic_path(text: str) -> None:
    """The ``field:`` part of a message is a key a marketer wrote, never ``flows.0.steps.0`` or empty."""
    with pytest.raises(ConfigError) as caught:
        parse_flows(text)
    message = str(caught.value)
    assert not re.search(r"flows\.\d", message), message
    assert ": :" not in message, message


def test_an_absurd_delay_is_a_config_error() -> None:
    """A delay too large for a timedelta is reported like any bad duration, with its line."""
    with pytest.raises(ConfigError, match=r"^flows\.yaml:5: flow 'a': step 's': after: .*too long"):
        parse_flows(flows_text("- {name: s, after: 99999999999d, channel: callback}"))


@pytest.mark.parametrize(
    ("template", "known", "expected"),
    [
        pytest.param(
            "cart_remindr",
            TEMPLATES,
            "flows.yaml:5: flow 'a': step 's': unknown template 'cart_remindr' (did you mean 'cart_reminder'?)",
            id="close match suggested",
        ),
        pytest.param("zzz", TEMPLATES, "flows.yaml:5: flow 'a': step 's': unknown template 'zzz'", id="nothing close"),
    ],
)
def test_an_unknown_template_is_refused_with_a_suggestion(template: str, known: list[str], expected: str) -> None:
    """When templates are given, a step naming a missing one fails at its line, suggesting a close name."""
    text = flows_text(f"- {{name: s, after: 1h, channel: email, template: {template}}}")
    with pytest.raises(ConfigError) as caught:
        parse_flows(text, templates=known)
    assert str(caught.value) == expected


def test_templates_are_not_checked_when_none_are_given() -> None:
    """Without a template list (tests, previews) any template name is accepted."""
    flows = parse_flows(flows_text("- {name: s, after: 1h, channel: email, template: anything}"))
    assert flows.flows[0].steps[0].template == "anything"


CONDITION = "cart.value >= 50 and not journey.clicked"


@pytest.mark.parametrize(
    ("value", "clicked", "expected"),
    [
        (50, False, True),
        (Decimal("50.00"), False, True),
        (120.5, False, True),
        (49.99, False, False),
        (Decimal("0"), False, False),
        (50, True, False),
        (500, True, False),
    ],
)
def test_value_and_click_condition(value: Any, clicked: bool, expected: bool) -> None:
    """``cart.value >= 50 and not journey.clicked`` holds for big, unclicked carts only."""
    context = {"cart": {"value": value, "items": []}, "journey": {"clicked": clicked, "messages_sent": 1}}
    assert Condition(CONDITION).evaluate(context) is expected


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("checkout_step == 'payment'", {"checkout_step": "payment"}, True),
        ("payment.reason == 'card_declined'", {"payment": {"reason": "expired_card"}}, False),
        ("store in ['fr', 'be']", {"store": "fr"}, True),
        ("customer.consent.sms", {"customer": {"consent": {"sms": True}}}, True),
        ("cart['items'] | length > 1", {"cart": {"items": [1, 2]}}, True),
        ("journey.messages_sent == 0", {"journey": {"messages_sent": 0}}, True),
    ],
)
def test_conditions_read_every_documented_name(source: str, context: dict[str, Any], expected: bool) -> None:
    """Conditions can read cart, customer, payment, checkout_step, store and journey."""
    assert Condition(source).evaluate(context) is expected


@pytest.mark.parametrize(
    ("source", "context"),
    [
        pytest.param(CONDITION, {"cart": {}, "journey": {"clicked": False}}, id="missing attribute"),
        pytest.param(CONDITION, {"journey": {"clicked": False}}, id="missing name"),
        pytest.param(CONDITION, {"cart": {"value": None}, "journey": {}}, id="None compared to a number"),
        pytest.param("cart.value / 0", {"cart": {"value": 1}}, id="division by zero"),
    ],
)
def test_a_condition_that_cannot_be_evaluated_raises_condition_error(source: str, context: dict[str, Any]) -> None:
    """Missing data or a runtime error is a ConditionError, never a silent False."""
    with pytest.raises(ConditionError, match="failed"):
        Condition(source).evaluate(context)


@pytest.mark.parametrize(
    "source",
    [
        "cart.__class__.__mro__",
        "''.__class__.__mro__[1].__subclasses__()",
        "cart.__init__.__globals__",
        "cart.items.append(1)",
        "range(10) | list",
        "lipsum()",
    ],
)
def test_the_sandbox_refuses_internals_and_globals(source: str) -> None:
    """Reaching Python internals, mutating data or calling globals fails with ConditionError."""
    with pytest.raises(ConditionError):
        Condition(source).evaluate({"cart": {"value": 1, "items": []}})


@pytest.mark.parametrize("source", ["().__class__", "cart.__class__", "cart | attr('__class__')"])
def test_an_unsafe_attribute_never_evaluates_to_the_object(source: str) -> None:
    """Whatever else happens, a condition never gets hold of a class (which would be truthy)."""
    try:
        result = Condition(source).evaluate({"cart": {"value": 1}})
    except ConditionError:
        return
    assert result is False


@pytest.mark.parametrize("source", ["().__class__", "cart.__class__", "journey.clickd", "nothing"])
def test_a_bare_unsafe_or_undefined_attribute_raises_condition_error(source: str) -> None:
    """A whole condition that is an unsafe or misspelt attribute is an error, not a quiet False."""
    with pytest.raises(ConditionError):
        Condition(source).evaluate({"journey": {"clicked": True}})


@pytest.mark.parametrize("source", ["cart.value >=", "{{ cart }}", "cart.value >= 10 and", "(", ""])
def test_a_condition_that_does_not_compile_raises_condition_error(source: str) -> None:
    """Bad syntax is refused when the condition is compiled, quoting the source."""
    with pytest.raises(ConditionError, match="invalid condition"):
        Condition(source)


def test_condition_error_is_a_config_error() -> None:
    """ConditionError is a ConfigError, so start-up and ``recovery check`` report it the same way."""
    assert issubclass(ConditionError, ConfigError)


def abandoned_flow() -> Flow:
    """The example's ``abandoned_cart`` flow."""
    flow = parse_flows(SERVICE_EXAMPLE).get("abandoned_cart")
    assert flow is not None
    return flow


def test_plan_steps_schedules_each_step_after_its_delay() -> None:
    """Every step is due its ``after`` from the trigger time, in file order, with its channel."""
    assert plan_steps(abandoned_flow(), NOW) == [
        PlannedStep(name="reminder", position=0, channel=ChannelName.EMAIL, due_at=NOW + timedelta(hours=1)),
        PlannedStep(name="sms_offer", position=1, channel=ChannelName.SMS, due_at=NOW + timedelta(hours=24)),
        PlannedStep(name="call_me", position=2, channel=ChannelName.CALLBACK, due_at=NOW + timedelta(hours=26)),
    ]


def test_a_zero_delay_step_is_due_at_the_trigger_time() -> None:
    """``after: 0s`` means now."""
    flow = parse_flows(SERVICE_EXAMPLE).get("payment_failed")
    assert flow is not None
    assert [step.due_at for step in plan_steps(flow, NOW)] == [NOW + timedelta(minutes=2), NOW]


@pytest.mark.parametrize(
    ("last_entered", "expected"),
    [
        pytest.param(None, True, id="never entered"),
        pytest.param(NOW - timedelta(days=7), True, id="exactly reentry_after ago"),
        pytest.param(NOW - timedelta(days=30), True, id="long ago"),
        pytest.param(NOW - timedelta(days=7) + timedelta(seconds=1), False, id="one second short"),
        pytest.param(NOW - timedelta(hours=1), False, id="an hour ago"),
    ],
)
def test_may_enter_waits_reentry_after_between_entries(last_entered: datetime | None, expected: bool) -> None:
    """A customer re-enters a flow only once ``reentry_after`` (7 days by default) has passed."""
    assert may_enter(abandoned_flow(), last_entered, NOW) is expected


def test_reentry_after_is_configurable_per_flow() -> None:
    """A flow's own ``reentry_after`` replaces the default."""
    flow = parse_flows(flows_text(reentry_after="1h")).flows[0]
    assert may_enter(flow, NOW - timedelta(minutes=59), NOW) is False
    assert may_enter(flow, NOW - timedelta(hours=1), NOW) is True
