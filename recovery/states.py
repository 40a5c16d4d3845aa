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
    """Why a step sent nothing (published with ``step.skipped``)."""

    NO_CONSENT = "no_consent"
    QUIET_HOURS_DEFERRED = "quiet_hours_deferred"
    FREQUENCY_CAP = "frequency_cap"
    HOLDOUT = "holdout"
    CONDITION_FALSE = "condition_false"
    SUPPRESSED = "suppressed"
    NO_CONTACT = "no_contact"
    ORDER_COMPLETED = "order_completed"
    LANDLINE = "landline"  # an SMS step whose number is a fixed line: falls back, or skips


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
