"""The "why did you leave?" answers a shopper can give (README, "For marketers")."""

from __future__ import annotations

from enum import StrEnum


class FeedbackAnswer(StrEnum):
    """The causes the seeds name; anything else is refused when a template asks for a link."""

    SHIPPING_COST = "shipping_cost"
    ACCOUNT_REQUIRED = "account_required"
    DELIVERY_TIME = "delivery_time"
    PAYMENT_ISSUE = "payment_issue"
    COMPARING = "comparing"
    OTHER = "other"


def parse_answer(value: object) -> FeedbackAnswer:
    """The answer named by ``value``; ``ValueError`` listing the valid ones otherwise."""
    try:
        return FeedbackAnswer(str(value))
    except ValueError:
        valid = ", ".join(answer.value for answer in FeedbackAnswer)
        raise ValueError(f"unknown feedback answer {value!r}: use one of {valid}") from None


def preview_feedback_url(answer: str) -> str:
    """Where a feedback link points in previews and checks, which have no journey to sign."""
    return f"https://preview.invalid/f/?answer={parse_answer(answer).value}"
