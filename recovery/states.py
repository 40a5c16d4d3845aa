"""The states a journey, a step and a message move through."""

from __future__ import annotations

from enum import StrEnum


class JourneyStatus(StrEnum):
    """One run of one flow for one cart."""

    ACTIVE = "active"
    CONVERTED = "converted"  # the cart was bought after at least one message
    CANCELLED = "cancelled"  # new activity, or an order before any message
    COMPLETED = "completed"  # every step ran, no order


class StepStatus(StrEnum):
    """A scheduled step of a journey."""

    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STEP_STATUSES = frozenset({StepStatus.SENT, StepStatus.SKIPPED, StepStatus.FAILED, StepStatus.CANCELLED})


class MessageState(StrEnum):
    """The outbox row of one message: written before any provider call."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class PublishedType(StrEnum):
    """Event types published on ``recovery.messages``."""

    STEP_SCHEDULED = "step.scheduled"
    STEP_CANCELLED = "step.cancelled"
    STEP_SKIPPED = "step.skipped"
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_CLICKED = "message.clicked"
    JOURNEY_CONVERTED = "journey.converted"
    JOURNEY_REFUNDED = "journey.refunded"
    FEEDBACK_RECEIVED = "feedback.received"
    CALLBACK_COMPLETED = "callback.completed"


class SkipReason(StrEnum):
    """Why a step sent nothing, for good (published with ``step.skipped``)."""

    NO_CONSENT = "no_consent"
    FREQUENCY_CAP = "frequency_cap"
    HOLDOUT = "holdout"
    CONDITION_FALSE = "condition_false"
    SUPPRESSED = "suppressed"
    LANDLINE = "landline"  # an SMS step whose number is a fixed line: falls back, or skips


class DeferReason(StrEnum):
    """Why a step was moved later, to be checked again then.

    The contract publishes a deferral as ``step.skipped`` with this reason (events.md: ``quiet_hours_deferred``
    is one of ``step.skipped``'s reasons); the step itself stays pending.
    """

    QUIET_HOURS = "quiet_hours_deferred"


class StepMode(StrEnum):
    """How a callback step reaches the shopper (flows.yaml ``mode``)."""

    OFFER = "offer"  # texted an offer to call back (SMS consent and phone consent)
    DIRECT = "direct"  # a task for the agents straight away (an existing relationship: phone consent only)


class CancelReason(StrEnum):
    """Why a due step was cancelled unsent (the step's stored reason)."""

    JOURNEY_ENDED = "journey_ended"  # the journey converted, was cancelled or completed meanwhile
    FLOW_CHANGED = "flow_changed"  # flows.yaml no longer has the step
    ORDER_COMPLETED = "order_completed"  # the cart was bought (or is gone) before the step was due


class RetryReason(StrEnum):
    """Why a step went back to ``pending`` after a send attempt."""

    PROVIDER_UNAVAILABLE = "provider_unavailable"


class FailReason(StrEnum):
    """Why a step or its message failed for good: a step's reason, a ``message.failed`` reason, an error code.

    A provider's refusal is published with the provider's own code (``"21211"``), and the step stores it
    as ``provider:<code>`` (see ``provider_failure``); these members are the reasons of our own making.
    """

    MESSAGE_FAILED = "message_failed"  # the step's message had already failed (a re-claimed step)
    TEMPLATE_ERROR = "template_error"  # the message could not be rendered
    TEMPLATE = "template"  # the message's error code for a rendering failure
    NEEDS_REVIEW = "needs_review"  # after a crash, the provider could not say whether it has the message
    PERMANENT = "permanent"  # a permanent refusal that came with no provider code
    TRANSIENT = "transient"  # a temporary refusal that came with no provider code
    GAVE_UP = "gave_up"  # durable retries exhausted (in count or age): ``gave_up:<code>``
    UNEXPECTED_ERROR = "unexpected_error"  # a bug while firing the step: recorded, never re-claimed forever


PROVIDER_PREFIX = "provider"


def provider_failure(code: str) -> str:
    """The step reason for a message the provider refused for good: ``provider:<code>``."""
    return f"{PROVIDER_PREFIX}:{code}"


def gave_up(code: str | None) -> str:
    """The failure code once durable retries are exhausted: ``gave_up:<last code>``."""
    return f"{FailReason.GAVE_UP}:{code or FailReason.TRANSIENT}"


class ChannelName(StrEnum):
    """The channels a flow step may name."""

    EMAIL = "email"
    SMS = "sms"
    CALLBACK = "callback"


class ConversionKind(StrEnum):
    """What a recorded order says: which message, if any, gets the credit (a ``conversions`` row's ``kind``)."""

    CLICKED = "clicked"  # clicked a recovery message, then bought
    SENT_NO_CLICK = "sent_no_click"  # bought after a recovery message, without clicking
    HOLDOUT = "holdout"  # a control-group shopper bought: no message was sent, none is credited
