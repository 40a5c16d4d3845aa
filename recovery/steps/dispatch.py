"""Firing one claimed step: decide (condition, guards), write the message row, send once, record.

Never twice: the message row (key = journey + step) is written and marked ``sending`` before the
provider call; a row found in ``sending`` later is reconciled with the provider, not resent blindly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.channels.base import Channel, Delivery, OutgoingMessage
from recovery.channels.retry import send_with_retry
from recovery.clock import Clock
from recovery.errors import ConfigError, OutcomeUnknownError, PermanentError, TransientError
from recovery.events import is_landline
from recovery.journeys.records import CartState, CustomerState, JourneyRow
from recovery.rules import Flows, FlowStep
from recovery.rules.conditions import ConditionError
from recovery.states import ChannelName, JourneyStatus, MessageState, PublishedType, SkipReason, StepStatus
from recovery.steps.consent import message_consent, with_ledger
from recovery.steps.context import condition_context, recipient_of
from recovery.steps.discount_hook import DiscountRegistrar
from recovery.steps.discounts import DiscountCode
from recovery.steps.guards import Defer, GuardInput, GuardPolicy, Send, Skip, check_guards
from recovery.store import cart_rows, consent_rows, discount_rows, step_rows
from recovery.store.consent_rows import ConsentChannel, ConsentSource
from recovery.store.outbox import enqueue, message_event
from recovery.store.step_rows import ClaimedStep

log = logging.getLogger(__name__)


class Composer(Protocol):
    """Turns a step and its context into the message's subject, text and HTML."""

    def compose(
        self,
        *,
        step: FlowStep,
        channel: ChannelName,
        journey: JourneyRow,
        context: Mapping[str, Any],
        message_id: str,
    ) -> tuple[str | None, str, str | None]: ...

    def unsubscribe_url(self, customer_key: str, channel: ChannelName) -> str | None:
        """The one-click unsubscribe link for this customer and channel (None: the composer has none)."""
        ...


@runtime_checkable
class VersionedComposer(Protocol):
    """A composer that can say which template versions a message is rendered with."""

    def version_of(
        self, *, step: FlowStep, channel: ChannelName, journey: JourneyRow, context: Mapping[str, Any]
    ) -> str | None: ...


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Durable retries after the in-process ones: bounded in count and in age."""

    in_process_attempts: int = 3
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 8
    max_age: timedelta = timedelta(hours=24)

    def next_delay(self, attempts: int, retry_after: float | None) -> timedelta:
        """Exponential delay for the ``attempts``-th durable retry, at least the provider's Retry-After."""
        delay: timedelta = min(self.base_delay * (2 ** max(attempts - 1, 0)), self.max_delay)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        return delay


@dataclass(frozen=True, kw_only=True)
class _Plan:
    """What the decision transaction decided to send."""

    outgoing: OutgoingMessage
    reconcile: bool
    attempts: int
    first_tried_at: datetime
    offer: DiscountCode | None = None


class Dispatcher:
    """Fires claimed steps through the channels."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        flows: Flows,
        channels: Mapping[ChannelName, Channel],
        composer: Composer,
        guard_policy: GuardPolicy,
        clock: Clock,
        retry: RetryPolicy = RetryPolicy(),
        registrar: DiscountRegistrar | None = None,
    ) -> None:
        self._registrar = registrar
        self._engine = engine
        self._flows = flows
        self._channels = channels
        self._composer = composer
        self._guards = guard_policy
        self._clock = clock
        self._retry = retry

    async def fire(self, step: ClaimedStep) -> None:
        """Decide, then send at most once, then record the outcome."""
        plan = await self._decide(step)
        if plan is None:
            return
        channel = self._channels[plan.outgoing.channel]
        if plan.reconcile:
            try:
                found = await channel.lookup(plan.outgoing)
            except OutcomeUnknownError as exc:
                await self._failed(step, plan, code="needs_review", error=str(exc))
                return
            if found is not None:
                await self._sent(step, plan, found)
                return
        try:
            if plan.offer is not None and self._registrar is not None:
                await self._registrar.register(plan.offer, store=plan.outgoing.store)
            delivery = await send_with_retry(channel, plan.outgoing, attempts=self._retry.in_process_attempts)
        except PermanentError as exc:
            await self._failed(step, plan, code=exc.code or "permanent", error=str(exc))
        except TransientError as exc:
            await self._postpone(step, plan, exc)
        except OutcomeUnknownError:
            # Left in ``sending``: when the claim's lease expires the step is reclaimed and reconciled.
            log.warning("send outcome unknown; will reconcile", extra={"step": step.step_id})
        else:
            await self._sent(step, plan, delivery)

    async def _decide(self, step: ClaimedStep) -> _Plan | None:
        now = self._clock.now()
        async with self._engine.begin() as conn:
            if not await step_rows.still_owned(conn, step):
                log.warning("claim lost to another worker; not sending", extra={"step": step.step_id})
                return None
            journey = await step_rows.load_journey(conn, step.journey_id)
            if journey is None or journey.status != JourneyStatus.ACTIVE:
                await step_rows.set_step(conn, step.step_id, StepStatus.CANCELLED, now, reason="journey_ended")
                return None
            cart = (await cart_rows.load_carts(conn, [step.cart_id])).get(step.cart_id)
            flow = self._flows.get(journey.flow)
            flow_step = next((s for s in flow.steps if s.name == step.name), None) if flow else None
            if cart is None or cart.ordered_at is not None or flow_step is None:
                reason = "flow_changed" if flow_step is None else "order_completed"
                await step_rows.set_step(conn, step.step_id, StepStatus.CANCELLED, now, reason=reason)
                await step_rows.complete_if_done(conn, journey.journey_id, now)
                return None
            customer = (await cart_rows.load_customers(conn, [journey.customer_key])).get(journey.customer_key)
            if customer is not None:
                # The ledger (opt-outs the shopper told us) beats the consent copied into cart events.
                entries = await consent_rows.ledger_entries(
                    conn, customer_key=customer.customer_key, email=customer.email, phone=customer.phone
                )
                customer = with_ledger(customer, entries)
            context = condition_context(cart, customer, journey)
            try:
                holds = flow_step.condition is None or flow_step.condition.evaluate(context)
            except ConditionError as exc:
                log.warning("condition failed; step skipped", extra={"step": step.step_id, "error": str(exc)})
                holds = False
            if not holds:
                await self._skip(conn, step, journey, now, "condition_false")
                return None
            channel = await self._choose_channel(conn, step, journey, flow_step, customer, cart, now)
            if channel is None:
                return None
            return await self._open(conn, step, journey, flow_step, channel, customer, context, now)

    async def _choose_channel(
        self,
        conn: AsyncConnection,
        step: ClaimedStep,
        journey: JourneyRow,
        flow_step: FlowStep,
        customer: CustomerState | None,
        cart: CartState,
        now: datetime,
    ) -> ChannelName | None:
        """The step's channel, or its fallback when the first has no consent; None when nothing may go."""
        recent = await step_rows.recent_sends(conn, journey.customer_key, now - self._guards.frequency_window)
        candidates = [flow_step.channel] + ([flow_step.fallback] if flow_step.fallback else [])
        verdict: Send | Skip | Defer | None = None
        for channel in candidates:
            consent = message_consent(customer, channel, flow_step.mode)
            recipient = recipient_of(customer, channel)
            if channel == ChannelName.SMS and recipient and is_landline(recipient):
                verdict = Skip(reason=SkipReason.LANDLINE)  # a fixed line cannot receive an SMS: try the fallback
                continue
            verdict = check_guards(
                GuardInput(
                    channel=channel,
                    consent=consent if recipient_of(customer, channel) else False,
                    timezone=customer.timezone if customer else None,
                    store=cart.store,
                    recent_sends=recent,
                    holdout=journey.holdout,
                    internal=channel == ChannelName.CALLBACK and flow_step.mode == "direct",
                ),
                self._guards,
                now,
            )
            if not isinstance(verdict, Skip | Defer):
                return channel
            if not (isinstance(verdict, Skip) and verdict.reason == SkipReason.NO_CONSENT):
                break  # only a missing consent moves the message to the fallback channel
        if isinstance(verdict, Defer):
            await step_rows.set_step(
                conn,
                step.step_id,
                StepStatus.PENDING,
                now,
                reason="quiet_hours_deferred",
                due_at=verdict.until,
            )
            await enqueue(
                conn,
                [self._event(PublishedType.STEP_SKIPPED, step, journey, now, reason="quiet_hours_deferred")],
            )
        elif isinstance(verdict, Skip):
            await self._skip(conn, step, journey, now, str(verdict.reason))
        return None

    async def _open(
        self,
        conn: AsyncConnection,
        step: ClaimedStep,
        journey: JourneyRow,
        flow_step: FlowStep,
        channel: ChannelName,
        customer: CustomerState | None,
        context: Mapping[str, Any],
        now: datetime,
    ) -> _Plan | None:
        message_id = f"{journey.journey_id}:{step.name}"
        message = await step_rows.open_message(
            conn,
            {
                "message_id": message_id,
                "journey_id": journey.journey_id,
                "step_id": step.step_id,
                "cart_id": journey.cart_id,
                "customer_key": journey.customer_key,
                "flow": journey.flow,
                "step": step.name,
                "channel": channel.value,
                "template": flow_step.template,
                "state": MessageState.PENDING.value,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
        if message.state in (MessageState.SENT, MessageState.DELIVERED):
            await step_rows.set_step(conn, step.step_id, StepStatus.SENT, now)
            return None
        if message.state == MessageState.FAILED:
            await step_rows.set_step(conn, step.step_id, StepStatus.FAILED, now, reason="message_failed")
            return None
        if message.state == MessageState.SENDING and message.content:
            # A crash left it in flight: reconcile exactly what was handed to the provider.
            outgoing = OutgoingMessage(**{**message.content, "channel": ChannelName(message.content["channel"])})
            return _Plan(
                outgoing=outgoing, reconcile=True, attempts=message.attempts, first_tried_at=message.created_at
            )
        code: DiscountCode | None = None
        if flow_step.offer is not None:
            code = await discount_rows.code_for(
                conn,
                journey_id=journey.journey_id,
                step=step.name,
                percent=flow_step.offer.percent,
                valid_for=flow_step.offer.valid_for,
                now=now,
            )
            context = {**context, "offer": {"code": code.code, "percent": code.percent, "expires_at": code.expires_at}}
        try:
            # Both synchronous, back to back: the live templates cannot change between them.
            subject, text, html = self._composer.compose(
                step=flow_step, channel=channel, journey=journey, context=context, message_id=message_id
            )
            version = (
                self._composer.version_of(step=flow_step, channel=channel, journey=journey, context=context)
                if isinstance(self._composer, VersionedComposer)
                else None
            )
        except ConfigError as exc:
            await step_rows.set_message(
                conn, message_id, MessageState.FAILED, now, error_code="template", error=str(exc)
            )
            await step_rows.set_step(conn, step.step_id, StepStatus.FAILED, now, reason="template_error")
            await enqueue(
                conn,
                [
                    self._event(
                        PublishedType.MESSAGE_FAILED,
                        step,
                        journey,
                        now,
                        reason="template_error",
                        channel=channel,
                        message_id=message_id,
                    )
                ],
            )
            return None
        outgoing = OutgoingMessage(
            message_id=message_id,
            journey_id=journey.journey_id,
            cart_id=journey.cart_id,
            flow=journey.flow,
            step=step.name,
            channel=channel,
            to=recipient_of(customer, channel) or "",
            subject=subject,
            text=text,
            html=html,
            # RFC 8058 List-Unsubscribe(-Post) headers on every marketing email.
            unsubscribe_url=(
                self._composer.unsubscribe_url(journey.customer_key, channel) if channel == ChannelName.EMAIL else None
            ),
            locale=(customer.locale if customer and customer.locale else "en"),
            store=journey.store,
            metadata={
                "mode": flow_step.mode,
                "customer_key": journey.customer_key,
                "reason": "payment_failed" if journey.context.get("payment") else "flow",
            },
        )
        await step_rows.set_message(
            conn,
            message_id,
            MessageState.SENDING,
            now,
            attempts=message.attempts + 1,
            channel=channel.value,
            template_version=version,
            content={**asdict(outgoing), "channel": channel.value},
        )
        return _Plan(
            outgoing=outgoing,
            reconcile=message.state == MessageState.SENDING,
            attempts=message.attempts + 1,
            first_tried_at=message.created_at,
            offer=code,
        )

    async def _skip(
        self, conn: AsyncConnection, step: ClaimedStep, journey: JourneyRow, now: datetime, reason: str
    ) -> None:
        await step_rows.set_step(conn, step.step_id, StepStatus.SKIPPED, now, reason=reason)
        await enqueue(conn, [self._event(PublishedType.STEP_SKIPPED, step, journey, now, reason=reason)])
        await step_rows.complete_if_done(conn, journey.journey_id, now)

    async def _sent(self, step: ClaimedStep, plan: _Plan, delivery: Delivery) -> None:
        now = self._clock.now()
        message = plan.outgoing
        async with self._engine.begin() as conn:
            await step_rows.set_message(
                conn,
                message.message_id,
                MessageState.SENT,
                now,
                provider_id=delivery.provider_id,
                detail=dict(delivery.detail) or None,
            )
            await step_rows.set_step(conn, step.step_id, StepStatus.SENT, now)
            await step_rows.count_sent(conn, message.journey_id, now)
            await enqueue(conn, [_message_event(PublishedType.MESSAGE_SENT, message, now)])
            await step_rows.complete_if_done(conn, message.journey_id, now)
        log.info(
            "message sent",
            extra={"journey_id": message.journey_id, "step": message.step, "channel": message.channel.value},
        )

    async def _failed(self, step: ClaimedStep, plan: _Plan, *, code: str, error: str) -> None:
        now = self._clock.now()
        message = plan.outgoing
        async with self._engine.begin() as conn:
            await step_rows.set_message(
                conn, message.message_id, MessageState.FAILED, now, error_code=code, error=error[:1000]
            )
            await step_rows.set_step(conn, step.step_id, StepStatus.FAILED, now, reason=f"provider:{code}")
            if code == "21610":  # the recipient replied STOP at Twilio: record the opt-out
                await consent_rows.record_consent(
                    conn,
                    message.metadata["customer_key"],
                    ConsentChannel.SMS,
                    consent=False,
                    source=ConsentSource.PROVIDER_21610,
                    now=now,
                )
            dead_letter = {
                "reason": f"message failed for good: {code}",
                "source": "message",
                "message_id": message.message_id,
                "journey_id": message.journey_id,
                "cart_id": message.cart_id,
                "flow": message.flow,
                "step": message.step,
                "channel": message.channel.value,
                "code": code,
            }
            await enqueue(
                conn,
                [
                    _message_event(PublishedType.MESSAGE_FAILED, message, now, reason=code),
                    {
                        "topic_role": "dead_letter",
                        "key": message.cart_id,
                        "payload": json.dumps(dead_letter),
                        "created_at": now,
                    },
                ],
            )
            await step_rows.complete_if_done(conn, message.journey_id, now)
        log.warning("message failed", extra={"journey_id": message.journey_id, "step": message.step, "code": code})

    async def _postpone(self, step: ClaimedStep, plan: _Plan, exc: TransientError) -> None:
        now = self._clock.now()
        attempts = step.attempts + 1
        if attempts >= self._retry.max_attempts or now - plan.first_tried_at >= self._retry.max_age:
            await self._failed(step, plan, code=f"gave_up:{exc.code or 'transient'}", error=str(exc))
            return
        due_at = now + self._retry.next_delay(attempts, exc.retry_after)
        async with self._engine.begin() as conn:
            # The provider surely did not take it: back to pending, to be sent later.
            await step_rows.set_message(
                conn,
                plan.outgoing.message_id,
                MessageState.PENDING,
                now,
                error_code=exc.code,
                error=str(exc)[:1000],
            )
            await step_rows.set_step(
                conn,
                step.step_id,
                StepStatus.PENDING,
                now,
                reason="provider_unavailable",
                due_at=due_at,
                attempts=attempts,
            )
        log.warning("provider unavailable; step postponed", extra={"step": step.step_id, "attempts": attempts})

    def _event(
        self,
        type_: PublishedType,
        step: ClaimedStep,
        journey: JourneyRow,
        now: datetime,
        *,
        reason: str | None = None,
        channel: ChannelName | None = None,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        return message_event(
            type_=type_,
            now=now,
            cart_id=journey.cart_id,
            journey_id=journey.journey_id,
            flow=journey.flow,
            step=step.name,
            channel=(channel.value if channel else step.channel),
            reason=reason,
            message_id=message_id,
        )


def _message_event(
    type_: PublishedType, message: OutgoingMessage, now: datetime, reason: str | None = None
) -> dict[str, Any]:
    return message_event(
        type_=type_,
        now=now,
        cart_id=message.cart_id,
        journey_id=message.journey_id,
        flow=message.flow,
        step=message.step,
        channel=message.channel.value,
        message_id=message.message_id,
        reason=reason,
    )

