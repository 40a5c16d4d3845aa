"""What firing one claimed step should do: a pure decision over what the dispatcher loaded.

Pure: no I/O and no clock. ``Dispatcher`` loads the step's facts in one transaction, calls ``decide``,
and writes the plan; rendering and the discount code are I/O, so a ``SendMessage`` plan is turned into
the provider's message by ``outgoing_for`` (or into a ``FailStep`` by ``render_failed``) once the
dispatcher has rendered it. The checks run in this order, the first that applies decides:

1. the journey is no longer active               → ``CancelStep(journey_ended)``
2. flows.yaml lost the step                        → ``CancelStep(flow_changed)``
3. the cart is gone or bought                      → ``CancelStep(order_completed)``
4. the step's ``when:`` is false or fails          → ``SkipStep(condition_false)``
5. the guards, on the step's channel, then on its fallback when only consent was missing (an SMS to
   a landline also moves to the fallback)          → ``SkipStep(reason)`` or ``DeferStep(until)``
6. the step's message row from an earlier claim: sent → ``MarkSent``, failed → ``FailStep(message_failed)``,
   left ``sending`` with its content by a crash    → ``ReconcileMessage`` (ask the provider, never resend blindly)
7. otherwise                                       → ``SendMessage`` on the chosen channel
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from recovery.channels.base import OutgoingMessage
from recovery.consent.authority import message_consent
from recovery.desk.queue import TaskReason
from recovery.events import is_landline
from recovery.journeys.records import CartState, CustomerState, JourneyRow
from recovery.messages import MessageIdentity
from recovery.render.short_links import ShortLink
from recovery.rules import FlowStep
from recovery.rules.conditions import ConditionError
from recovery.states import (
    CancelReason,
    ChannelName,
    DeferReason,
    FailReason,
    JourneyStatus,
    MessageState,
    SkipReason,
    StepMode,
)
from recovery.steps import guards
from recovery.steps.context import condition_context, recipient_of
from recovery.steps.step_rows import ClaimedStep, MessageRow
from recovery.stores import StoreIdentity


@dataclass(frozen=True, kw_only=True)
class StepFacts:
    """What the dispatcher read for one claimed step, in the transaction that decides it."""

    step: ClaimedStep
    journey: JourneyRow | None
    cart: CartState | None
    flow_step: FlowStep | None  # None: flows.yaml no longer has this step
    customer: CustomerState | None  # consents already overridden by the ledger
    recent_sends: tuple[datetime, ...] = ()  # the customer's sends within the frequency window
    message: MessageRow | None = None  # the step's message row, if an earlier claim wrote one
    variant: str | None = None  # the A/B variant this journey gets at a split step (``flow_step`` is resolved)
    # The journey's shop front, resolved once from settings: its zone, closed days, language and voice.
    store: StoreIdentity | None = None


@dataclass(frozen=True, kw_only=True)
class CancelStep:
    """The step no longer applies; ``journey_over``: the journey already ended, nothing to complete."""

    reason: CancelReason
    journey_over: bool = False


@dataclass(frozen=True, kw_only=True)
class SkipStep:
    """The step sends nothing, for good (published as ``step.skipped``); ``detail`` is for the log."""

    reason: SkipReason
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeferStep:
    """The step waits until ``until`` and is checked again then (published as ``step.skipped``: the contract)."""

    until: datetime
    reason: DeferReason = DeferReason.QUIET_HOURS


@dataclass(frozen=True, kw_only=True)
class MarkSent:
    """An earlier claim already sent the step's message: the step only records it."""


@dataclass(frozen=True, kw_only=True)
class FailStep:
    """The step fails for good; with ``message``, its message fails too and ``message.failed`` is published.

    ``reason`` is the step's (a ``FailReason``, or ``provider:<code>`` after a provider's refusal);
    ``published_reason`` the one ``message.failed`` carries when it differs (the provider's code).
    """

    reason: str
    message: MessageIdentity | None = None
    error_code: str | None = None
    error: str | None = None
    published_reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReconcileMessage:
    """A crash left the message ``sending``: ask the provider for exactly what it was handed."""

    outgoing: OutgoingMessage
    attempts: int
    first_tried_at: datetime


@dataclass(frozen=True, kw_only=True)
class SendMessage:
    """Render the step's message on ``identity.channel`` and send it (attempt number ``attempts``)."""

    identity: MessageIdentity
    journey: JourneyRow
    flow_step: FlowStep
    recipient: str
    locale: str
    context: Mapping[str, Any]  # what the template sees (the offer is added once its code exists)
    store: StoreIdentity  # whose name, sender and footer the message carries
    attempts: int
    first_tried_at: datetime
    # The row was ``sending`` without its content (an older crash): look at the provider before sending.
    reconcile: bool = False
    variant: str | None = None


Plan = CancelStep | SkipStep | DeferStep | MarkSent | FailStep | ReconcileMessage | SendMessage


@dataclass(frozen=True, kw_only=True)
class Rendered:
    """A message as the composer rendered it, with the template version and unsubscribe link it used."""

    subject: str | None
    text: str
    html: str | None
    version: str | None = None
    unsubscribe_url: str | None = None
    short_links: tuple[ShortLink, ...] = ()  # an SMS's /s/ links, stored with the message


def decide(facts: StepFacts, policy: guards.GuardPolicy, now: datetime) -> Plan:
    """What to do with the claimed step at ``now`` (an aware datetime), given what the store holds."""
    journey, cart, flow_step = facts.journey, facts.cart, facts.flow_step
    if journey is None or journey.status != JourneyStatus.ACTIVE:
        return CancelStep(reason=CancelReason.JOURNEY_ENDED, journey_over=True)
    if flow_step is None:
        return CancelStep(reason=CancelReason.FLOW_CHANGED)
    if cart is None or cart.ordered_at is not None:
        return CancelStep(reason=CancelReason.ORDER_COMPLETED)
    context = condition_context(cart, facts.customer, journey)
    try:
        holds = flow_step.condition is None or flow_step.condition.evaluate(context)
    except ConditionError as exc:
        return SkipStep(reason=SkipReason.CONDITION_FALSE, detail=str(exc))
    if not holds:
        return SkipStep(reason=SkipReason.CONDITION_FALSE)
    choice = choose_channel(facts, journey, cart, flow_step, policy, now)
    if isinstance(choice, guards.Defer):
        return DeferStep(until=choice.until, reason=choice.reason)
    if isinstance(choice, guards.Skip):
        return SkipStep(reason=choice.reason)
    identity = MessageIdentity.for_step(
        journey_id=journey.journey_id, cart_id=journey.cart_id, flow=journey.flow, step=facts.step.name, channel=choice
    )
    return _with_message(facts, journey, flow_step, identity, context, now)


def choose_channel(
    facts: StepFacts,
    journey: JourneyRow,
    cart: CartState,
    flow_step: FlowStep,
    policy: guards.GuardPolicy,
    now: datetime,
) -> ChannelName | guards.Skip | guards.Defer:
    """The step's channel, or its fallback when the first has no consent; else the verdict that stopped it."""
    customer = facts.customer
    candidates = [flow_step.channel] + ([flow_step.fallback] if flow_step.fallback else [])
    verdict: guards.Verdict = guards.Skip(reason=SkipReason.NO_CONSENT)
    for channel in candidates:
        recipient = recipient_of(customer, channel)
        if channel == ChannelName.SMS and recipient and is_landline(recipient):
            verdict = guards.Skip(reason=SkipReason.LANDLINE)  # a fixed line cannot receive an SMS: try the fallback
            continue
        request = guards.GuardInput(
            channel=channel,
            consent=message_consent(customer, channel, flow_step.mode) if recipient else False,
            timezone=customer.timezone if customer else None,
            store=cart.store,
            store_timezone=facts.store.timezone if facts.store else None,
            # SMS and calls wait for an open day of the store (email is not held: quiet hours skip it).
            closed=facts.store.closed if facts.store else guards.NO_CLOSED_DAYS,
            recent_sends=facts.recent_sends,
            holdout=journey.holdout,
            internal=channel == ChannelName.CALLBACK and flow_step.mode == StepMode.DIRECT,
        )
        verdict = guards.check_guards(request, policy, now)
        if isinstance(verdict, guards.Send):
            return channel
        if not (isinstance(verdict, guards.Skip) and verdict.reason == SkipReason.NO_CONSENT):
            break  # only a missing consent moves the message to the fallback channel
    assert not isinstance(verdict, guards.Send)
    return verdict


def _with_message(
    facts: StepFacts,
    journey: JourneyRow,
    flow_step: FlowStep,
    identity: MessageIdentity,
    context: Mapping[str, Any],
    now: datetime,
) -> Plan:
    """The plan once the guards let the message go: what its row from an earlier claim, if any, allows."""
    message = facts.message
    if message is not None and message.state in (MessageState.SENT, MessageState.DELIVERED):
        return MarkSent()
    if message is not None and message.state == MessageState.FAILED:
        return FailStep(reason=FailReason.MESSAGE_FAILED)
    if message is not None and message.state == MessageState.SENDING and message.content:
        # A crash left it in flight: reconcile exactly what was handed to the provider.
        outgoing = OutgoingMessage.from_content(message.content)
        return ReconcileMessage(outgoing=outgoing, attempts=message.attempts, first_tried_at=message.created_at)
    customer = facts.customer
    store = facts.store or StoreIdentity(id=journey.store)
    return SendMessage(
        identity=identity,
        journey=journey,
        flow_step=flow_step,
        recipient=recipient_of(customer, identity.channel) or "",
        # The shopper's language, else the store's, else English (contract stores.md "Language").
        locale=(customer.locale if customer else None) or store.locale or "en",
        # Templates see the store as a record; a ``when:`` condition keeps comparing its id.
        context={**context, "store": store.template_view()},
        store=store,
        attempts=(message.attempts if message else 0) + 1,
        first_tried_at=message.created_at if message else now,
        reconcile=message is not None and message.state == MessageState.SENDING,
        variant=facts.variant,
    )


def outgoing_for(plan: SendMessage, rendered: Rendered) -> OutgoingMessage:
    """The message handed to the provider, from the send plan and its rendering."""
    journey = plan.journey
    return OutgoingMessage(
        **asdict(plan.identity),
        to=plan.recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        unsubscribe_url=rendered.unsubscribe_url,
        locale=plan.locale,
        store=journey.store,
        mode=plan.flow_step.mode,
        customer_key=journey.customer_key,
        # Why an agent would call (a direct callback's task reason): a failed payment, else the flow.
        task_reason=(TaskReason.PAYMENT_FAILED if journey.context.get("payment") else TaskReason.FLOW).value,
        variant=plan.variant,
        # The journey's shop speaks: From with its name (email) or its SMS sender; Reply-To when it reads replies.
        sender=plan.store.email_from() if plan.identity.channel == ChannelName.EMAIL else plan.store.sms_sender,
        reply_to=plan.store.reply_to if plan.identity.channel == ChannelName.EMAIL else None,
    )


def render_failed(plan: SendMessage, error: str) -> FailStep:
    """The step and its message fail for good: the template cannot render this message."""
    return FailStep(
        reason=FailReason.TEMPLATE_ERROR, message=plan.identity, error_code=FailReason.TEMPLATE.value, error=error
    )
