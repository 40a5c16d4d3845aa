"""Firing one claimed step: load its facts, ``decide`` (pure), write the plan, send once, record.

Never twice: the message row (key = journey + step) is written and marked ``sending`` before the
provider call; a row found in ``sending`` later is reconciled with the provider, not resent blindly.
The scheduler fires steps in batches (``dispatch_batch``), which build on these parts: ``facts``,
``write_plan``, ``send`` and ``record``; ``fire`` is one step alone (a batch's fallback).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.channels.base import Channel, Delivery, OutgoingMessage
from recovery.channels.retry import send_with_retry
from recovery.channels.sms import record_if_opted_out
from recovery.clock import Clock
from recovery.consent import ledger
from recovery.consent.authority import AddressKeys, LedgerEntry, with_ledger
from recovery.desk.link_step import link_flow_step
from recovery.errors import ConfigError, OutcomeUnknownError, PermanentError, TransientError
from recovery.journeys.records import JourneyRow
from recovery.messages import message_id_for
from recovery.render import short_link_rows
from recovery.rules import Flows
from recovery.rules.flow_book import FlowBook, StaticFlows
from recovery.rules.variants import resolve_step
from recovery.states import (
    ChannelName,
    JourneyStatus,
    MessageState,
    PublishedType,
    RetryReason,
    StepStatus,
)
from recovery.steps import discount_rows, fire_rows, step_rows
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
from recovery.steps.discount_hook import DiscountRegistrar
from recovery.steps.discounts import DiscountCode
from recovery.steps.failures import fail_step, identity_event
from recovery.steps.fire_rows import FireRows
from recovery.steps.guards import GuardPolicy
from recovery.steps.rendering import Composer, render
from recovery.steps.settle import (
    AfterSend,
    Delivered,
    Outcome,
    Postpone,
    RecordSent,
    Refused,
    RetryPolicy,
    SentAttempt,
    Unavailable,
    Unknown,
    settle,
)
from recovery.steps.step_rows import ClaimedStep
from recovery.store.outbox import enqueue, message_event
from recovery.stores import StoreDirectory

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class InFlight:
    """A message marked ``sending``, about to be handed (or, ``reconcile``, looked up first) at the provider."""

    outgoing: OutgoingMessage
    reconcile: bool
    first_tried_at: datetime
    offer: DiscountCode | None = None


class Dispatcher:
    """Fires claimed steps through the channels."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        flows: Flows | FlowBook,
        channels: Mapping[ChannelName, Channel],
        composer: Composer,
        guard_policy: GuardPolicy,
        clock: Clock,
        addresses: AddressKeys,
        retry: RetryPolicy = RetryPolicy(),
        registrar: DiscountRegistrar | None = None,
        stores: StoreDirectory | None = None,
    ) -> None:
        self.addresses = addresses
        self._registrar = registrar
        self._stores = stores or StoreDirectory()
        self.engine = engine
        self._flows = flows if isinstance(flows, FlowBook) else StaticFlows(flows)
        self._channels = channels
        self.composer = composer
        self.guards = guard_policy
        self.clock = clock
        self._retry = retry

    async def fire(self, step: ClaimedStep) -> None:
        """Decide, then send at most once, then settle and record the outcome."""
        flight = await self._prepare(step)
        if flight is None:
            return
        await self.record(step, flight, await self.send(step, flight))

    async def send(self, step: ClaimedStep, flight: InFlight) -> AfterSend:
        """Send (or reconcile) the message marked ``sending``, and settle what the outcome means for the step."""
        outcome = await self._send(flight)
        sent = SentAttempt(message=flight.outgoing.identity, first_tried_at=flight.first_tried_at)
        return settle(outcome, step, self._retry, self.clock.now(), sent=sent)

    async def _send(self, flight: InFlight) -> Outcome:
        """Hand the message to its channel (after a crash, ask for it first) and say what came of it."""
        channel = self._channels[flight.outgoing.channel]
        if flight.reconcile:
            try:
                found = await channel.lookup(flight.outgoing)
            except OutcomeUnknownError as exc:
                return Unknown(error=str(exc), at_lookup=True)
            if found is not None:
                return Delivered(delivery=found)
        try:
            if flight.offer is not None and self._registrar is not None:
                await self._registrar.register(flight.offer, store=flight.outgoing.store)
            delivery = await send_with_retry(channel, flight.outgoing, attempts=self._retry.in_process_attempts)
        except PermanentError as exc:
            return Refused(code=exc.code, error=str(exc))
        except TransientError as exc:
            return Unavailable(code=exc.code, error=str(exc), retry_after=exc.retry_after)
        except OutcomeUnknownError as exc:
            return Unknown(error=str(exc))
        return Delivered(delivery=delivery)

    async def record(self, step: ClaimedStep, flight: InFlight, plan: AfterSend) -> None:
        """Write what ``settle`` decided."""
        if isinstance(plan, RecordSent):
            await self._sent(step, flight, plan.delivery)
        elif isinstance(plan, FailStep):
            await self._failed(step, flight, plan)
        elif isinstance(plan, Postpone):
            await self._postpone(step, flight, plan)
        else:
            log.warning("send outcome unknown; will reconcile", extra={"step": step.step_id})

    async def _prepare(self, step: ClaimedStep) -> InFlight | None:
        """One transaction: load the step's facts, decide, and write the plan; the message to send, if any."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            facts = await self._load(conn, step, now)
            if facts is None:
                log.warning("claim lost to another worker; not sending", extra={"step": step.step_id})
                return None
            plan = decide(facts, self.guards, now)
            return await self.write_plan(conn, step, facts, plan, now)

    async def _load(self, conn: AsyncConnection, step: ClaimedStep, now: datetime) -> StepFacts | None:
        """The step's facts in two queries (its rows, the consent ledger); None when the claim was lost."""
        since = now - self.guards.frequency_window
        rows = await fire_rows.load_for_fire(conn, step, message_id_for(step.journey_id, step.name), since=since)
        if rows is None:
            return None
        entries: list[LedgerEntry] = []
        if rows.customer is not None:
            customer = rows.customer
            entries = await ledger.ledger_entries(
                conn,
                customer_key=customer.customer_key,
                email=customer.email,
                phone=customer.phone,
                addresses=self.addresses,
            )
        return await self.facts(conn, step, rows, entries)

    async def facts(
        self, conn: AsyncConnection, step: ClaimedStep, rows: FireRows, entries: Sequence[LedgerEntry]
    ) -> StepFacts:
        """What ``decide`` needs from the step's rows and its customer's consent-ledger ``entries``."""
        journey, customer = rows.journey, rows.customer
        if journey is None:
            return StepFacts(step=step, journey=None, cart=None, flow_step=None, customer=None)
        flow = await self._flows.flow_of(conn, journey.flow, journey.flow_version)
        flow_step = next((s for s in flow.steps if s.name == step.name), None) if flow else None
        variant = None
        if flow_step is not None:
            flow_step, variant = resolve_step(journey.journey_id, flow_step)
        recent_sends = rows.recent_sends
        agent_link = link_flow_step(step.name)
        if agent_link is not None:
            # The shopper asked for it on the phone: a journey whose steps all ran may still carry it, and
            # the frequency cap (unsolicited messages) does not hold it back; consent and quiet hours do.
            flow_step, recent_sends, variant = agent_link, (), None
            if journey.status == JourneyStatus.COMPLETED:
                journey = replace(journey, status=JourneyStatus.ACTIVE)
        if customer is not None:
            # The ledger (opt-outs the shopper told us) beats the consent copied into cart events.
            customer = with_ledger(customer, entries)
        return StepFacts(
            step=step,
            journey=journey,
            cart=rows.cart,
            flow_step=flow_step,
            customer=customer,
            recent_sends=recent_sends,
            message=rows.message,
            variant=variant,
            store=self._stores.get(journey.store),
        )

    async def write_plan(
        self, conn: AsyncConnection, step: ClaimedStep, facts: StepFacts, plan: Plan, now: datetime
    ) -> InFlight | None:
        """Record the plan; for a send, render and mark the message ``sending`` first."""
        journey = facts.journey
        if isinstance(plan, CancelStep):
            await step_rows.set_step(conn, step.step_id, StepStatus.CANCELLED, now, reason=plan.reason.value)
            if not plan.journey_over and journey is not None:
                await step_rows.complete_if_done(conn, journey.journey_id, now)
            return None
        assert journey is not None  # decide() cancels every step whose journey is gone
        if isinstance(plan, SkipStep):
            if plan.detail:
                log.warning("condition failed; step skipped", extra={"step": step.step_id, "error": plan.detail})
            await step_rows.set_step(conn, step.step_id, StepStatus.SKIPPED, now, reason=plan.reason.value)
            await enqueue(conn, [_step_event(PublishedType.STEP_SKIPPED, step, journey, now, plan.reason)])
            await step_rows.complete_if_done(conn, journey.journey_id, now)
        elif isinstance(plan, DeferStep):
            await step_rows.set_step(
                conn, step.step_id, StepStatus.PENDING, now, reason=plan.reason.value, due_at=plan.until
            )
            await enqueue(conn, [_step_event(PublishedType.STEP_SKIPPED, step, journey, now, plan.reason)])
        elif isinstance(plan, MarkSent):
            await step_rows.set_step(conn, step.step_id, StepStatus.SENT, now)
        elif isinstance(plan, FailStep):
            await fail_step(conn, step.step_id, plan, now, journey_id=journey.journey_id)
        elif isinstance(plan, ReconcileMessage):
            return InFlight(outgoing=plan.outgoing, reconcile=True, first_tried_at=plan.first_tried_at)
        else:
            return await self._open(conn, step, facts, plan, now)
        return None

    async def _open(
        self, conn: AsyncConnection, step: ClaimedStep, facts: StepFacts, plan: SendMessage, now: datetime
    ) -> InFlight | None:
        """Create the discount code, render the message and write its row as ``sending`` (one upsert)."""
        identity, flow_step = plan.identity, plan.flow_step
        row = message_row(step, plan, now)
        code: DiscountCode | None = None
        context = plan.context
        if flow_step.offer is not None:
            code = await discount_rows.code_for(
                conn,
                journey_id=identity.journey_id,
                step=identity.step,
                percent=flow_step.offer.percent or 0,
                valid_for=flow_step.offer.valid_for,
                now=now,
                free_shipping=flow_step.offer.free_shipping,
            )
            offer = {"code": code.code, "percent": code.percent, "free_shipping": code.free_shipping}
            context = {**context, "offer": offer | {"expires_at": code.expires_at}}
        try:
            rendered = await render(self.composer, plan, context)
        except ConfigError as exc:
            if facts.message is None:
                await step_rows.open_message(conn, row)  # the row the failure is recorded on
            await fail_step(conn, step.step_id, render_failed(plan, str(exc)), now, journey_id=identity.journey_id)
            return None
        outgoing = outgoing_for(plan, rendered)
        # The SMS's short links exist before it can be read: stored in the transaction that marks it sending.
        await short_link_rows.store_links(conn, rendered.short_links, now)
        # Committed before the provider call: a crash from here on leaves ``sending``, reconciled, never resent.
        await fire_rows.open_sending(conn, sending_row(row, plan, rendered, outgoing))
        return InFlight(outgoing=outgoing, reconcile=plan.reconcile, first_tried_at=plan.first_tried_at, offer=code)

    async def _sent(self, step: ClaimedStep, flight: InFlight, delivery: Delivery) -> None:
        now = self.clock.now()
        message = flight.outgoing
        async with self.engine.begin() as conn:
            await fire_rows.record_sent(
                conn,
                step_id=step.step_id,
                message_id=message.message_id,
                journey_id=message.journey_id,
                now=now,
                provider_id=delivery.provider_id,
                detail=dict(delivery.detail) or None,
            )
            sent = identity_event(PublishedType.MESSAGE_SENT, message, now, variant=message.variant)
            await enqueue(conn, [sent])
        log.info(
            "message sent",
            extra={"journey_id": message.journey_id, "step": message.step, "channel": message.channel.value},
        )

    async def _failed(self, step: ClaimedStep, flight: InFlight, plan: FailStep) -> None:
        now = self.clock.now()
        message = flight.outgoing
        async with self.engine.begin() as conn:
            await fail_step(conn, step.step_id, plan, now, journey_id=message.journey_id)
            await record_if_opted_out(conn, message.customer_key, plan.error_code or "", now, self.addresses)
        log.warning(
            "message failed", extra={"journey_id": message.journey_id, "step": message.step, "code": plan.error_code}
        )

    async def _postpone(self, step: ClaimedStep, flight: InFlight, plan: Postpone) -> None:
        now = self.clock.now()
        async with self.engine.begin() as conn:
            # The provider surely did not take it: back to pending, to be sent later.
            await step_rows.set_message(
                conn, flight.outgoing.message_id, MessageState.PENDING, now, error_code=plan.code, error=plan.error
            )
            await step_rows.set_step(
                conn,
                step.step_id,
                StepStatus.PENDING,
                now,
                reason=RetryReason.PROVIDER_UNAVAILABLE.value,
                due_at=plan.due_at,
                attempts=plan.attempts,
            )
        log.warning("provider unavailable; step postponed", extra={"step": step.step_id, "attempts": plan.attempts})


def _step_event(
    type_: PublishedType, step: ClaimedStep, journey: JourneyRow, now: datetime, reason: str
) -> dict[str, Any]:
    """An event about the step itself (no message yet): it names the step's own channel."""
    return message_event(
        type_=type_,
        now=now,
        cart_id=journey.cart_id,
        journey_id=journey.journey_id,
        flow=journey.flow,
        step=step.name,
        channel=step.channel,
        reason=str(reason),
    )


def message_row(step: ClaimedStep, plan: SendMessage, now: datetime) -> dict[str, Any]:
    """The step's message row before it is rendered (``pending``): what a render failure is recorded on."""
    return {
        **plan.identity.identity_fields(),
        "step_id": step.step_id,
        "customer_key": plan.journey.customer_key,
        "template": plan.flow_step.template,
        "variant": plan.variant,
        "state": MessageState.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def sending_row(
    row: dict[str, Any], plan: SendMessage, rendered: Rendered, outgoing: OutgoingMessage
) -> dict[str, Any]:
    """The message row marked ``sending`` with what the provider is handed (reconciled after a crash)."""
    return row | {
        "state": MessageState.SENDING.value,
        "attempts": plan.attempts,
        "template_version": rendered.version,
        "content": outgoing.to_content(),
    }
