"""The dispatcher's pure decision: which plan a claimed step gets, from what the store holds, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from recovery.channels.base import OutgoingMessage
from recovery.journeys.records import CartState, CustomerState, JourneyRow
from recovery.messages import MessageIdentity
from recovery.rules import FlowStep
from recovery.states import (
    CancelReason,
    ChannelName,
    DeferReason,
    FailReason,
    JourneyStatus,
    MessageState,
    RetryReason,
    SkipReason,
    StepMode,
    gave_up,
    provider_failure,
)
from recovery.steps.decide import (
    CancelStep,
    DeferStep,
    FailStep,
    MarkSent,
    Plan,
    ReconcileMessage,
    Rendered,
    SendMessage,
    SkipStep,
    StepFacts,
    decide,
    outgoing_for,
    render_failed,
)
from recovery.steps.guards import GuardPolicy
from recovery.steps.step_rows import ClaimedStep, MessageRow

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # a Wednesday: inside the default quiet-hours window
NIGHT = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)
MOBILE = "+33612345678"
LANDLINE = "+33140000000"
POLICY = GuardPolicy()

STEP = ClaimedStep(
    step_id="s-1",
    journey_id="j-1",
    cart_id="c-1",
    name="reminder",
    channel="email",
    due_at=NOON,
    attempts=0,
    claimed_by="w-1",
    claimed_at=NOON,
)
JOURNEY = JourneyRow(
    journey_id="j-1",
    cart_id="c-1",
    flow="abandoned_cart",
    status=JourneyStatus.ACTIVE,
    holdout=False,
    customer_key="cust-1",
    store="default",
    started_at=NOON - timedelta(hours=1),
    messages_sent=0,
    clicked=False,
    context={},
)
CART = CartState(
    cart_id="c-1",
    store="default",
    customer_key="cust-1",
    cart={"currency": "EUR", "items": [], "value": 120},
    first_event_at=NOON - timedelta(hours=2),
    last_event_at=NOON - timedelta(hours=1),
)
CUSTOMER = CustomerState(
    customer_key="cust-1",
    email="ada@example.com",
    phone=MOBILE,
    locale="fr",
    consent_email=True,
    consent_sms=True,
    consent_phone=True,
    updated_at=NOON - timedelta(hours=1),
)
EMAIL_STEP = FlowStep(name="reminder", after=timedelta(hours=1), channel=ChannelName.EMAIL, template="cart")
IDENTITY = MessageIdentity(
    message_id="j-1:reminder",
    journey_id="j-1",
    cart_id="c-1",
    flow="abandoned_cart",
    step="reminder",
    channel=ChannelName.EMAIL,
)
# The ``content`` JSON a ``sending`` row held before MessageIdentity existed: flat, channel as a string.
OLD_CONTENT: dict[str, Any] = {
    "message_id": "j-1:reminder",
    "journey_id": "j-1",
    "cart_id": "c-1",
    "flow": "abandoned_cart",
    "step": "reminder",
    "channel": "email",
    "to": "ada@example.com",
    "text": "Your cart is waiting",
    "subject": "Still thinking?",
    "html": None,
    "unsubscribe_url": "https://shop.example/u/abc",
    "locale": "fr",
    "store": "default",
    "metadata": {"mode": "offer", "customer_key": "cust-1", "reason": "flow"},
}


def _facts(**changes: Any) -> StepFacts:
    base = StepFacts(step=STEP, journey=JOURNEY, cart=CART, flow_step=EMAIL_STEP, customer=CUSTOMER)
    return replace(base, **changes)


def _message(state: MessageState, *, attempts: int = 1, content: dict[str, Any] | None = None) -> MessageRow:
    return MessageRow(
        message_id="j-1:reminder",
        state=state,
        attempts=attempts,
        provider_id=None,
        created_at=NOON - timedelta(minutes=30),
        content=content,
    )


def _step(channel: ChannelName, **fields: Any) -> FlowStep:
    return FlowStep(name="reminder", after=timedelta(hours=1), channel=channel, template="cart", **fields)


def _sends_on(plan: Plan) -> ChannelName | None:
    return plan.identity.channel if isinstance(plan, SendMessage) else None


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (_facts(journey=None), CancelStep(reason=CancelReason.JOURNEY_ENDED, journey_over=True)),
        (
            _facts(journey=replace(JOURNEY, status=JourneyStatus.CONVERTED)),
            CancelStep(reason=CancelReason.JOURNEY_ENDED, journey_over=True),
        ),
        (_facts(flow_step=None), CancelStep(reason=CancelReason.FLOW_CHANGED)),
        (
            _facts(flow_step=None, cart=replace(CART, ordered_at=NOON)),
            CancelStep(reason=CancelReason.FLOW_CHANGED),
        ),
        (_facts(cart=None), CancelStep(reason=CancelReason.ORDER_COMPLETED)),
        (_facts(cart=replace(CART, ordered_at=NOON)), CancelStep(reason=CancelReason.ORDER_COMPLETED)),
    ],
    ids=["journey-gone", "journey-converted", "step-removed", "step-removed-beats-order", "cart-gone", "ordered"],
)
def test_a_step_whose_journey_flow_or_cart_moved_on_is_cancelled(facts: StepFacts, expected: Plan) -> None:
    """An ended journey, a step removed from flows.yaml, or a bought cart cancel the step with that reason."""
    assert decide(facts, POLICY, NOON) == expected


def test_a_false_condition_skips_the_step() -> None:
    """A ``when:`` that does not hold sends nothing and says ``condition_false``."""
    facts = _facts(flow_step=_step(ChannelName.EMAIL, when="cart.value > 1000"))
    assert decide(facts, POLICY, NOON) == SkipStep(reason=SkipReason.CONDITION_FALSE)


def test_a_condition_that_cannot_be_evaluated_skips_the_step_with_its_error_for_the_log() -> None:
    """A condition that fails at run time (comparing a number with text) skips, and the log says why."""
    facts = _facts(flow_step=_step(ChannelName.EMAIL, when="cart.value > 'many'"))
    plan = decide(facts, POLICY, NOON)
    assert isinstance(plan, SkipStep)
    assert plan.reason == SkipReason.CONDITION_FALSE
    assert plan.detail and "cart.value" in plan.detail


@pytest.mark.parametrize(
    ("facts", "now", "expected"),
    [
        (_facts(journey=replace(JOURNEY, holdout=True)), NOON, SkipStep(reason=SkipReason.HOLDOUT)),
        (_facts(customer=replace(CUSTOMER, consent_email=None)), NOON, SkipStep(reason=SkipReason.NO_CONSENT)),
        (_facts(customer=replace(CUSTOMER, email=None)), NOON, SkipStep(reason=SkipReason.NO_CONSENT)),
        (_facts(customer=None), NOON, SkipStep(reason=SkipReason.NO_CONSENT)),
        (
            _facts(recent_sends=(NOON - timedelta(hours=2), NOON - timedelta(hours=1))),
            NOON,
            SkipStep(reason=SkipReason.FREQUENCY_CAP),
        ),
        (
            _facts(flow_step=_step(ChannelName.SMS), customer=replace(CUSTOMER, phone=LANDLINE)),
            NOON,
            SkipStep(reason=SkipReason.LANDLINE),
        ),
        (
            _facts(flow_step=_step(ChannelName.SMS)),
            NIGHT,
            DeferStep(until=datetime(2026, 3, 5, 8, 0, tzinfo=UTC), reason=DeferReason.QUIET_HOURS),
        ),
    ],
    ids=["holdout", "consent-unknown", "no-address", "no-customer", "frequency-cap", "landline", "quiet-hours"],
)
def test_the_guards_skip_or_defer_a_step(facts: StepFacts, now: datetime, expected: Plan) -> None:
    """Holdout, consent, the frequency cap and a landline skip; quiet hours defer to the next opening."""
    assert decide(facts, POLICY, now) == expected


@pytest.mark.parametrize(
    ("facts", "now", "channel"),
    [
        (_facts(), NOON, ChannelName.EMAIL),
        (_facts(), NIGHT, ChannelName.EMAIL),  # an email lands in an inbox: no quiet hours
        (
            _facts(
                flow_step=_step(ChannelName.EMAIL, fallback=ChannelName.SMS),
                customer=replace(CUSTOMER, consent_email=False),
            ),
            NOON,
            ChannelName.SMS,
        ),
        (
            _facts(
                flow_step=_step(ChannelName.SMS, fallback=ChannelName.EMAIL),
                customer=replace(CUSTOMER, phone=LANDLINE),
            ),
            NOON,
            ChannelName.EMAIL,
        ),
        (_facts(flow_step=_step(ChannelName.CALLBACK, mode="direct")), NIGHT, ChannelName.CALLBACK),
    ],
    ids=["email", "email-at-night", "fallback-without-consent", "landline-falls-back", "direct-callback-at-night"],
)
def test_a_step_the_guards_let_through_is_sent_on_the_right_channel(
    facts: StepFacts, now: datetime, channel: ChannelName
) -> None:
    """The step's channel, or its fallback when consent is missing or the number is a landline."""
    assert _sends_on(decide(facts, POLICY, now)) == channel


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (
            _facts(
                flow_step=_step(ChannelName.EMAIL, fallback=ChannelName.SMS),
                recent_sends=(NOON - timedelta(hours=2), NOON - timedelta(hours=1)),
            ),
            SkipStep(reason=SkipReason.FREQUENCY_CAP),
        ),
        (
            _facts(
                flow_step=_step(ChannelName.EMAIL, fallback=ChannelName.SMS),
                customer=replace(CUSTOMER, consent_email=False, consent_sms=False),
            ),
            SkipStep(reason=SkipReason.NO_CONSENT),
        ),
    ],
    ids=["cap-does-not-fall-back", "no-consent-anywhere"],
)
def test_only_a_missing_consent_moves_a_message_to_its_fallback(facts: StepFacts, expected: Plan) -> None:
    """The frequency cap stops the step outright; consent missing on both channels skips it."""
    assert decide(facts, POLICY, NOON) == expected


def test_a_first_send_opens_the_message_as_attempt_one() -> None:
    """No earlier row: the message is ``<journey>:<step>``, to the customer's address, in their locale."""
    plan = decide(_facts(), POLICY, NOON)
    assert isinstance(plan, SendMessage)
    assert plan.identity == IDENTITY
    assert (plan.recipient, plan.locale, plan.attempts, plan.first_tried_at, plan.reconcile) == (
        "ada@example.com",
        "fr",
        1,
        NOON,
        False,
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (_message(MessageState.SENT), MarkSent()),
        (_message(MessageState.DELIVERED), MarkSent()),
        (_message(MessageState.FAILED), FailStep(reason=FailReason.MESSAGE_FAILED)),
    ],
    ids=["sent", "delivered", "failed"],
)
def test_a_reclaimed_step_takes_the_outcome_of_its_finished_message(message: MessageRow, expected: Plan) -> None:
    """A message that already left, or failed for good, is never sent again."""
    assert decide(_facts(message=message), POLICY, NOON) == expected


def test_a_message_left_sending_by_a_previous_version_is_reconciled_from_its_flat_content() -> None:
    """A crash mid-send before an upgrade: the old flat ``content`` is looked up at the provider, not resent."""
    message = _message(MessageState.SENDING, attempts=2, content=OLD_CONTENT)
    plan = decide(_facts(message=message), POLICY, NOON)
    assert plan == ReconcileMessage(
        outgoing=OutgoingMessage(
            **{key: value for key, value in OLD_CONTENT.items() if key not in ("metadata", "channel")},
            channel=ChannelName.EMAIL,
            mode=StepMode.OFFER,
            customer_key="cust-1",
            task_reason="flow",
        ),
        attempts=2,
        first_tried_at=NOON - timedelta(minutes=30),
    )
    assert isinstance(plan, ReconcileMessage)
    assert plan.outgoing.identity == IDENTITY
    assert plan.outgoing.to_content() == OLD_CONTENT  # written back in the same shape


def test_a_direct_callback_left_sending_is_reconciled_as_a_direct_callback() -> None:
    """Mode, customer and task reason come back from the stored content, and are written back the same way."""
    content = {
        **OLD_CONTENT,
        "channel": "callback",
        "metadata": {"mode": "direct", "customer_key": "cust-9", "reason": "payment_failed"},
    }
    outgoing = OutgoingMessage.from_content(content)
    assert (outgoing.mode, outgoing.customer_key, outgoing.task_reason) == (StepMode.DIRECT, "cust-9", "payment_failed")
    assert outgoing.to_content() == content


def test_stored_content_with_keys_this_version_does_not_know_still_reconciles() -> None:
    """A row written by a newer version during a rolling upgrade still reads: extra keys are left out."""
    outgoing = OutgoingMessage.from_content({**OLD_CONTENT, "priority": "high"})
    assert outgoing.to_content() == OLD_CONTENT


@pytest.mark.parametrize(
    ("message", "attempts", "reconcile"),
    [
        (_message(MessageState.PENDING, attempts=2), 3, False),  # postponed by a provider outage
        (_message(MessageState.SENDING, attempts=1, content=None), 2, True),  # crashed with no content kept
    ],
    ids=["postponed", "sending-without-content"],
)
def test_a_message_tried_before_is_sent_again_as_the_next_attempt(
    message: MessageRow, attempts: int, reconcile: bool
) -> None:
    """The attempt count goes on and the retry age runs from the first try; in doubt, look before sending."""
    plan = decide(_facts(message=message), POLICY, NOON)
    assert isinstance(plan, SendMessage)
    assert (plan.attempts, plan.first_tried_at, plan.reconcile) == (attempts, message.created_at, reconcile)


def test_the_outgoing_message_carries_what_the_provider_and_callbacks_need() -> None:
    """Rendered text, the unsubscribe link, and the mode, customer and payment reason for callbacks."""
    journey = replace(JOURNEY, context={"payment": {"reason": "card_declined"}})
    plan = decide(_facts(journey=journey), POLICY, NOON)
    assert isinstance(plan, SendMessage)
    rendered = Rendered(subject="Hi", text="Your cart", html="<p>Your cart</p>", unsubscribe_url="https://u")
    outgoing = outgoing_for(plan, rendered)
    assert outgoing.identity == IDENTITY
    assert (outgoing.to, outgoing.subject, outgoing.text, outgoing.unsubscribe_url, outgoing.locale) == (
        "ada@example.com",
        "Hi",
        "Your cart",
        "https://u",
        "fr",
    )
    assert (outgoing.mode, outgoing.customer_key, outgoing.task_reason) == ("offer", "cust-1", "payment_failed")


def test_a_template_that_cannot_render_fails_the_step_and_its_message() -> None:
    """The message fails with code ``template``, the step and ``message.failed`` say ``template_error``."""
    plan = decide(_facts(), POLICY, NOON)
    assert isinstance(plan, SendMessage)
    assert render_failed(plan, "unknown variable") == FailStep(
        reason=FailReason.TEMPLATE_ERROR, message=IDENTITY, error_code="template", error="unknown variable"
    )


def test_reasons_keep_the_values_of_the_published_contract_and_the_stored_rows() -> None:
    """Renaming a member must never change what consumers and the database see."""
    assert [reason.value for reason in CancelReason] == ["journey_ended", "flow_changed", "order_completed"]
    assert RetryReason.PROVIDER_UNAVAILABLE.value == "provider_unavailable"
    assert (FailReason.MESSAGE_FAILED, FailReason.TEMPLATE_ERROR, FailReason.UNEXPECTED_ERROR) == (
        "message_failed",
        "template_error",
        "unexpected_error",
    )
    assert DeferReason.QUIET_HOURS.value == "quiet_hours_deferred"
    assert provider_failure("21610") == "provider:21610"
    assert provider_failure(FailReason.NEEDS_REVIEW) == "provider:needs_review"
    assert gave_up(None) == "gave_up:transient"
    assert gave_up("20429") == "gave_up:20429"
