"""The agents' queue rules: priority, lateness and what each outcome does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from recovery.desk.queue import CompletionError, Outcome, TaskReason, decide_completion, is_late, priority

NOW = datetime(2026, 1, 7, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((TaskReason.PAYMENT_FAILED, Decimal("20")), (TaskReason.FLOW, Decimal("5000"))),
        ((TaskReason.PAYMENT_FAILED, Decimal("20")), (TaskReason.CALLBACK_REQUESTED, Decimal("5000"))),
        ((TaskReason.CALLBACK_REQUESTED, Decimal("10")), (TaskReason.FLOW, Decimal("900"))),
        ((TaskReason.FLOW, Decimal("300")), (TaskReason.FLOW, Decimal("299.99"))),
        ((TaskReason.FLOW, Decimal("10")), (TaskReason.FLOW, None)),
        ((TaskReason.FLOW, Decimal("5000000")), (TaskReason.FLOW, Decimal("100"))),
    ],
)
def test_payment_failures_come_first_then_bigger_carts(
    first: tuple[TaskReason, Decimal | None], second: tuple[TaskReason, Decimal | None]
) -> None:
    """A payment failure outranks any cart value; within a reason, a bigger cart comes first."""
    assert priority(*first) > priority(*second)


@pytest.mark.parametrize(
    ("due_minutes_ago", "late"),
    [(0, False), (15, False), (16, True), (-30, False)],
)
def test_a_task_is_late_once_the_sla_after_its_due_time_has_passed(due_minutes_ago: int, late: bool) -> None:
    """The default 15-minute SLA flags tasks still waiting 16 minutes after they fell due."""
    assert is_late(NOW - timedelta(minutes=due_minutes_ago), NOW, timedelta(minutes=15)) is late


@pytest.mark.parametrize(
    ("outcome", "stop_calls"),
    [
        ("reached_recovered", False),
        ("reached_declined", False),
        ("no_answer", False),
        ("wrong_number", True),
        ("do_not_call", True),
    ],
)
def test_each_outcome_closes_the_task_and_some_stop_calls(outcome: str, stop_calls: bool) -> None:
    """do_not_call and wrong_number stop calls to that number; no outcome but call_back_later reopens."""
    completion = decide_completion(outcome, None, NOW)
    assert (completion.reopen_at, completion.stop_calls) == (None, stop_calls)


def test_call_back_later_reopens_the_task_at_the_chosen_time() -> None:
    """The task comes back to the queue at call_back_at."""
    later = NOW + timedelta(hours=3)
    assert decide_completion("call_back_later", later, NOW).reopen_at == later


@pytest.mark.parametrize(
    ("outcome", "call_back_at", "reason"),
    [
        ("hung_up", None, "not one of reached_recovered"),
        ("call_back_later", None, "needs call_back_at"),
        ("call_back_later", NOW - timedelta(minutes=1), "in the future"),
        ("call_back_later", datetime(2026, 1, 8, 10), "timezone offset"),
    ],
)
def test_a_bad_completion_is_refused_with_a_reason(outcome: str, call_back_at: datetime | None, reason: str) -> None:
    """An unknown outcome or a missing / past call-back time is a 422 with the reason."""
    with pytest.raises(CompletionError, match=reason):
        decide_completion(outcome, call_back_at, NOW)


def test_only_reached_outcomes_earn_attribution() -> None:
    """Orders after a conversation count for the call; after no answer they do not."""
    assert {o for o in Outcome if o.reached} == {Outcome.REACHED_RECOVERED, Outcome.REACHED_DECLINED}
