"""The pure decision after the send: what a provider's answer means for the step, no database, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recovery.backoff import exponential
from recovery.channels.base import Delivery
from recovery.messages import MessageIdentity
from recovery.states import ChannelName
from recovery.steps.decide import FailStep
from recovery.steps.settle import (
    AfterSend,
    AwaitReconcile,
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

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy()
IDENTITY = MessageIdentity(
    message_id="j-1:reminder",
    journey_id="j-1",
    cart_id="c-1",
    flow="abandoned_cart",
    step="reminder",
    channel=ChannelName.SMS,
)
DELIVERY = Delivery(provider_id="SM123")


def claimed(attempts: int = 0) -> ClaimedStep:
    return ClaimedStep(
        step_id="s-1",
        journey_id="j-1",
        cart_id="c-1",
        name="reminder",
        channel="sms",
        due_at=NOON,
        attempts=attempts,
        claimed_by="w-1",
        claimed_at=NOON,
    )


def failed(code: str, error: str) -> FailStep:
    return FailStep(reason=f"provider:{code}", message=IDENTITY, error_code=code, error=error, published_reason=code)


@pytest.mark.parametrize(
    ("outcome", "attempts", "first_tried_ago", "expected"),
    [
        pytest.param(Delivered(delivery=DELIVERY), 0, timedelta(0), RecordSent(delivery=DELIVERY), id="delivered"),
        pytest.param(
            Refused(code="21211", error="invalid number"),
            0,
            timedelta(0),
            failed("21211", "invalid number"),
            id="refused-with-provider-code",
        ),
        pytest.param(
            Refused(code=None, error="rejected"), 0, timedelta(0), failed("permanent", "rejected"), id="refused-no-code"
        ),
        pytest.param(Unknown(error="timeout"), 0, timedelta(0), AwaitReconcile(), id="unknown-after-send"),
        pytest.param(
            Unknown(error="lookup failed", at_lookup=True),
            0,
            timedelta(0),
            failed("needs_review", "lookup failed"),
            id="unknown-at-lookup-needs-review",
        ),
        pytest.param(
            Unavailable(code="20429", error="busy"),
            0,
            timedelta(minutes=1),
            Postpone(due_at=NOON + timedelta(seconds=30), attempts=1, code="20429", error="busy"),
            id="first-retry-after-base-delay",
        ),
        pytest.param(
            Unavailable(code="20429", error="busy"),
            2,
            timedelta(minutes=5),
            Postpone(due_at=NOON + timedelta(minutes=2), attempts=3, code="20429", error="busy"),
            id="third-retry-doubles-twice",
        ),
        pytest.param(
            Unavailable(code=None, error="busy", retry_after=600.0),
            0,
            timedelta(minutes=1),
            Postpone(due_at=NOON + timedelta(minutes=10), attempts=1, code=None, error="busy"),
            id="provider-retry-after-wins",
        ),
        pytest.param(
            Unavailable(code="20429", error="busy"),
            7,
            timedelta(minutes=1),
            failed("gave_up:20429", "busy"),
            id="out-of-attempts",
        ),
        pytest.param(
            Unavailable(code=None, error="busy"),
            1,
            timedelta(hours=24),
            failed("gave_up:transient", "busy"),
            id="too-old-to-retry",
        ),
    ],
)
def test_the_providers_answer_settles_the_step(
    outcome: Outcome, attempts: int, first_tried_ago: timedelta, expected: AfterSend
) -> None:
    """Sent is recorded; a refusal fails with the provider's code; a busy provider is retried, then given up on;
    in doubt after a send the message is left to be reconciled, never resent."""
    sent = SentAttempt(message=IDENTITY, first_tried_at=NOON - first_tried_ago)
    assert settle(outcome, claimed(attempts), POLICY, NOON, sent=sent) == expected


def test_a_long_provider_error_is_cut_before_it_is_stored() -> None:
    """The message row keeps at most 1000 characters of what the provider said."""
    sent = SentAttempt(message=IDENTITY, first_tried_at=NOON)
    plan = settle(Refused(code="x", error="e" * 5000), claimed(), POLICY, NOON, sent=sent)
    assert isinstance(plan, FailStep) and plan.error is not None and len(plan.error) == 1000


@pytest.mark.parametrize(
    ("attempts", "first_tried_ago", "retry_after", "expected_in"),
    [
        (1, timedelta(minutes=1), None, timedelta(seconds=30)),
        (3, timedelta(minutes=5), None, timedelta(minutes=2)),
        (1, timedelta(minutes=1), 600.0, timedelta(minutes=10)),  # the provider's Retry-After wins
        (20, timedelta(minutes=1), None, timedelta(hours=1)),  # capped at max_delay
        (8, timedelta(minutes=1), None, None),  # out of attempts
        (2, timedelta(hours=24), None, None),  # too old
    ],
)
def test_durable_retries_back_off_and_give_up(
    attempts: int, first_tried_ago: timedelta, retry_after: float | None, expected_in: timedelta | None
) -> None:
    """Exponential delays, at least the provider's Retry-After, bounded in count and in age."""
    policy = RetryPolicy(max_attempts=8 if attempts < 20 else 30)
    at = policy.retry_at(attempts=attempts, first_tried_at=NOON - first_tried_ago, now=NOON, retry_after=retry_after)
    assert at == (None if expected_in is None else NOON + expected_in)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        (0, timedelta(seconds=5)),
        (1, timedelta(seconds=5)),
        (2, timedelta(seconds=10)),
        (4, timedelta(seconds=40)),
        (30, timedelta(minutes=30)),
    ],
)
def test_the_one_retry_schedule_doubles_from_its_base_up_to_its_cap(attempt: int, expected: timedelta) -> None:
    """Step retries, the helpdesk webhook and the loops' backoff wait base, 2 × base, 4 × base … at most cap."""
    assert exponential(attempt, base=timedelta(seconds=5), cap=timedelta(minutes=30)) == expected
