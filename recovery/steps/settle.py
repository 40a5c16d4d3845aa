"""What the provider's answer means for the step: a pure decision after the send, like ``decide`` before it.

Pure: no I/O and no clock. ``Dispatcher`` sends (or, after a crash, looks the message up), turns what the
channel answered into an ``Outcome`` and writes the plan ``settle`` returns:

- delivered (or found at the provider)           → ``RecordSent``
- refused for good                                → ``FailStep(provider:<code>)``
- the provider could not say, during a lookup     → ``FailStep(provider:needs_review)``
- the outcome is unknown after a send             → ``AwaitReconcile`` (left ``sending``: reconciled at takeover)
- refused for now, retries left in count and age  → ``Postpone(due_at)``; none left → ``FailStep(gave_up:<code>)``
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from recovery.backoff import exponential
from recovery.channels.base import Delivery
from recovery.messages import MessageIdentity
from recovery.states import FailReason, gave_up, provider_failure
from recovery.steps.decide import FailStep
from recovery.steps.step_rows import ClaimedStep


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
        delay = exponential(attempts, base=self.base_delay, cap=self.max_delay)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        return delay

    def retry_at(
        self, *, attempts: int, first_tried_at: datetime, now: datetime, retry_after: float | None
    ) -> datetime | None:
        """When to try the ``attempts``-th durable retry after a transient refusal; None: give up."""
        if attempts >= self.max_attempts or now - first_tried_at >= self.max_age:
            return None
        return now + self.next_delay(attempts, retry_after)


@dataclass(frozen=True, kw_only=True)
class Delivered:
    """The provider took the message (or, reconciling, already had it)."""

    delivery: Delivery


@dataclass(frozen=True, kw_only=True)
class Refused:
    """The provider refused the message for good (``code``: its own, when it gave one)."""

    code: str | None
    error: str


@dataclass(frozen=True, kw_only=True)
class Unavailable:
    """The provider surely did not take the message, and may later (after ``retry_after`` s, if it said)."""

    code: str | None
    error: str
    retry_after: float | None = None


@dataclass(frozen=True, kw_only=True)
class Unknown:
    """Nobody can say whether the provider has the message; ``at_lookup``: even when asked after a crash."""

    error: str
    at_lookup: bool = False


Outcome = Delivered | Refused | Unavailable | Unknown


@dataclass(frozen=True, kw_only=True)
class SentAttempt:
    """The message that was sent for the step, and when it was first tried (retries age from there)."""

    message: MessageIdentity
    first_tried_at: datetime


@dataclass(frozen=True, kw_only=True)
class RecordSent:
    """The step and its message are sent; ``message.sent`` is published."""

    delivery: Delivery


@dataclass(frozen=True, kw_only=True)
class Postpone:
    """Back to pending until ``due_at`` (durable retry number ``attempts``); the message row keeps the error."""

    due_at: datetime
    attempts: int
    code: str | None
    error: str


@dataclass(frozen=True, kw_only=True)
class AwaitReconcile:
    """Leave the message ``sending``: when the claim's lease expires the step is reclaimed and reconciled."""


AfterSend = RecordSent | FailStep | Postpone | AwaitReconcile


def settle(outcome: Outcome, step: ClaimedStep, policy: RetryPolicy, now: datetime, *, sent: SentAttempt) -> AfterSend:
    """What to record for ``step`` after the provider answered ``outcome`` at ``now``."""
    if isinstance(outcome, Delivered):
        return RecordSent(delivery=outcome.delivery)
    if isinstance(outcome, Unknown):
        if outcome.at_lookup:
            return _failed(sent.message, FailReason.NEEDS_REVIEW.value, outcome.error)
        return AwaitReconcile()
    if isinstance(outcome, Refused):
        return _failed(sent.message, outcome.code or FailReason.PERMANENT.value, outcome.error)
    attempts = step.attempts + 1
    due_at = policy.retry_at(
        attempts=attempts, first_tried_at=sent.first_tried_at, now=now, retry_after=outcome.retry_after
    )
    if due_at is None:
        return _failed(sent.message, gave_up(outcome.code), outcome.error)
    return Postpone(due_at=due_at, attempts=attempts, code=outcome.code, error=outcome.error[:1000])


def _failed(message: MessageIdentity, code: str, error: str) -> FailStep:
    """The step fails as ``provider:<code>``; its message with ``code``, which ``message.failed`` publishes."""
    return FailStep(
        reason=provider_failure(code), message=message, error_code=code, error=error[:1000], published_reason=code
    )
