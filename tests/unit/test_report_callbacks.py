"""Callback figures: reach rate, and orders credited to a call only after a conversation, within the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from recovery.attribution.callbacks import CallbackRow, callback_figures, credited

DONE = datetime(2026, 1, 7, 10, tzinfo=UTC)
WINDOW = timedelta(days=5)


def row(
    outcome: str | None = "reached_recovered",
    *,
    agent: str | None = "Inès",
    status: str = "done",
    ordered: timedelta | None = timedelta(hours=2),
    value: str = "100.00",
    refunded: str | None = None,
) -> CallbackRow:
    return CallbackRow(
        status=status,
        outcome=outcome,
        agent=agent,
        completed_at=DONE if status == "done" else None,
        ordered_at=None if ordered is None else DONE + ordered,
        order_value=Decimal(value),
        refunded=Decimal(refunded) if refunded else None,
    )


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (row(), Decimal("100.00")),
        (row("reached_declined"), Decimal("100.00")),
        (row("no_answer"), None),
        (row("do_not_call"), None),
        (row(ordered=None), None),
        (row(ordered=-timedelta(minutes=1)), None),
        (row(ordered=WINDOW), Decimal("100.00")),
        (row(ordered=WINDOW + timedelta(seconds=1)), None),
        (row(refunded="30.00"), Decimal("70.00")),
        (row(refunded="130.00"), Decimal("0")),
        (row(None, status="open"), None),
    ],
)
def test_an_order_is_credited_to_a_call_only_after_a_conversation_within_the_window(
    task: CallbackRow, expected: Decimal | None
) -> None:
    """reached_* then an order on the cart within 5 days: credited net of refunds; otherwise not."""
    assert credited(task, WINDOW) == expected


def test_figures_give_reach_rate_and_revenue_per_outcome_and_agent() -> None:
    """Two of three done calls reached the shopper; one order follows; one task is still open."""
    figures = callback_figures(
        [
            row(agent="Inès"),
            row("reached_declined", agent="Marc", ordered=None),
            row("no_answer", agent="Marc"),
            row(None, agent=None, status="open", ordered=None),
        ],
        WINDOW,
    )
    assert figures["by_status"] == {"done": 3, "open": 1}
    assert figures["by_outcome"] == {"no_answer": 1, "reached_declined": 1, "reached_recovered": 1}
    assert (figures["tasks"], figures["reached"], figures["reach_rate"]) == (4, 2, 2 / 3)
    assert (figures["orders"], figures["revenue"]) == (1, "100.00")
    assert figures["agents"] == [
        {"agent": "Inès", "tasks": 1, "reached": 1, "reach_rate": 1.0, "orders": 1, "revenue": "100.00"},
        {"agent": "Marc", "tasks": 2, "reached": 1, "reach_rate": 0.5, "orders": 0, "revenue": "0.00"},
    ]
    assert [o["outcome"] for o in figures["outcomes"]] == ["no_answer", "reached_declined", "reached_recovered"]


@pytest.mark.parametrize(
    ("outcome", "link_sent", "ordered", "expected"),
    [
        ("no_answer", timedelta(0), timedelta(hours=1), Decimal("100.00")),  # link texted, then the order
        (None, timedelta(0), timedelta(hours=1), Decimal("100.00")),  # still claimed when the order came
        ("no_answer", timedelta(hours=2), timedelta(hours=1), None),  # the order came before the link
        ("no_answer", timedelta(0), WINDOW + timedelta(seconds=1), None),  # too late
    ],
)
def test_an_order_after_the_link_the_agent_sent_is_credited_to_the_call(
    outcome: str | None, link_sent: timedelta, ordered: timedelta, expected: Decimal | None
) -> None:
    """send-link during the call: an order on the cart within the window after it counts for the call."""
    task = CallbackRow(
        status="done" if outcome else "claimed",
        outcome=outcome,
        agent="Inès",
        completed_at=DONE if outcome else None,
        ordered_at=DONE + ordered,
        order_value=Decimal("100.00"),
        refunded=None,
        link_sent_at=DONE + link_sent,
    )
    assert credited(task, WINDOW) == expected
