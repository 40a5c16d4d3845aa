"""The agents' queue rules: reasons, outcomes, priority, lateness and what an outcome does to a task.

Pure decisions over plain values with time passed in; the store applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum


class TaskStatus(StrEnum):
    """Where a callback task is."""

    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"


class TaskReason(StrEnum):
    """Why the task exists (contract ``Task.reason``)."""

    PAYMENT_FAILED = "payment_failed"
    CALLBACK_REQUESTED = "callback_requested"
    FLOW = "flow"


class Outcome(StrEnum):
    """How a call ended (contract list)."""

    REACHED_RECOVERED = "reached_recovered"
    REACHED_DECLINED = "reached_declined"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    CALL_BACK_LATER = "call_back_later"
    DO_NOT_CALL = "do_not_call"

    @property
    def reached(self) -> bool:
        """The agent spoke to the shopper: an order afterwards is credited to the call."""
        return self in (Outcome.REACHED_RECOVERED, Outcome.REACHED_DECLINED)


class TaskEvent(StrEnum):
    """Entries of the ``callback_events`` audit."""

    CREATED = "created"
    CLAIMED = "claimed"
    RELEASED = "released"
    EXPIRED = "expired"
    COMPLETED = "completed"
    REOPENED = "reopened"
    LINK_SENT = "link_sent"  # the agent sent the shopper the restore link during the call


_REASON_RANK = {TaskReason.PAYMENT_FAILED: 2, TaskReason.CALLBACK_REQUESTED: 1, TaskReason.FLOW: 0}
_VALUE_CAP = 999_999  # whole currency units; above this, value no longer orders tasks
MAX_CALL_BACK_AHEAD = timedelta(days=90)  # a "call back later" further off is a typo or a parked task


def priority(reason: TaskReason, cart_value: Decimal | float | None) -> int:
    """Higher first: payment failures, then shopper requests, then flow steps; within each, cart value."""
    value = min(int(cart_value or 0), _VALUE_CAP)
    return _REASON_RANK[reason] * (_VALUE_CAP + 1) + max(value, 0)


def is_late(due_at: datetime, now: datetime, sla: timedelta) -> bool:
    """An open task not called within ``sla`` after it fell due is flagged."""
    return now > due_at + sla


@dataclass(frozen=True, kw_only=True)
class Completion:
    """What completing a task with an outcome does: reopen at ``reopen_at``, or close it."""

    outcome: Outcome
    reopen_at: datetime | None = None
    stop_calls: bool = False  # phone opt-out (do_not_call) or a number that is not the shopper's


class CompletionError(ValueError):
    """A completion request that cannot be applied (answered 422)."""


def decide_completion(outcome: str, call_back_at: datetime | None, now: datetime) -> Completion:
    """Validate an outcome request; ``call_back_later`` needs a future ``call_back_at``."""
    try:
        chosen = Outcome(outcome)
    except ValueError as exc:
        allowed = ", ".join(o.value for o in Outcome)
        raise CompletionError(f"outcome {outcome!r} is not one of {allowed}") from exc
    if chosen is Outcome.CALL_BACK_LATER:
        if call_back_at is None:
            raise CompletionError("call_back_later needs call_back_at (an ISO 8601 time with its offset)")
        if call_back_at.tzinfo is None:
            raise CompletionError("call_back_at needs a timezone offset, e.g. 2026-03-02T10:00:00+01:00")
        if call_back_at <= now:
            raise CompletionError("call_back_at must be in the future")
        if call_back_at > now + MAX_CALL_BACK_AHEAD:
            # A year-9999 time would park the task forever, out of every queue.
            raise CompletionError(f"call_back_at must be within {MAX_CALL_BACK_AHEAD.days} days")
        return Completion(outcome=chosen, reopen_at=call_back_at)
    return Completion(outcome=chosen, stop_calls=chosen in (Outcome.DO_NOT_CALL, Outcome.WRONG_NUMBER))


def retries_left(attempts: int, max_attempts: int) -> bool:
    """After ``attempts`` completions, a ``no_answer`` task is tried again while fewer than ``max_attempts``."""
    return attempts < max_attempts
