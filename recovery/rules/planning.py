"""Pure planning: which steps a new journey gets and when, and whether a customer may enter a flow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from recovery.rules.flows import Flow
from recovery.states import ChannelName


@dataclass(frozen=True, kw_only=True)
class PlannedStep:
    """A step to store for a new journey."""

    name: str
    position: int
    channel: ChannelName
    due_at: datetime


def plan_steps(flow: Flow, triggered_at: datetime) -> list[PlannedStep]:
    """Every step of ``flow``, due ``after`` its delay from the trigger time."""
    return [
        PlannedStep(name=step.name, position=index, channel=step.channel, due_at=triggered_at + step.after)
        for index, step in enumerate(flow.steps)
    ]


def may_enter(flow: Flow, last_entered_at: datetime | None, now: datetime) -> bool:
    """False while the customer entered this flow less than ``reentry_after`` ago."""
    return last_entered_at is None or now - last_entered_at >= flow.reentry_after
