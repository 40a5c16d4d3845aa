"""Counts of what the service scheduled, sent, skipped and cancelled: for the demo and operators."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.states import JourneyStatus, MessageState, StepStatus
from recovery.store.schema import carts, journeys, messages, steps


@dataclass(frozen=True, kw_only=True)
class Summary:
    """Totals read from the store."""

    carts: int
    ordered: int
    abandoned: int
    journeys_by_flow_status: dict[tuple[str, str], int] = field(default_factory=dict)
    steps_by_status: dict[str, int] = field(default_factory=dict)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    messages_by_channel_state: dict[tuple[str, str], int] = field(default_factory=dict)
    pending_steps: int = 0
    idle_timers: int = 0

    @property
    def sent(self) -> int:
        return sum(
            n
            for (_, state), n in self.messages_by_channel_state.items()
            if state in (MessageState.SENT, MessageState.DELIVERED)
        )

    @property
    def converted(self) -> int:
        return sum(n for (_, status), n in self.journeys_by_flow_status.items() if status == JourneyStatus.CONVERTED)


async def read_summary(engine: AsyncEngine) -> Summary:
    """Group-by counts over carts, journeys, steps and messages."""
    async with engine.connect() as conn:
        total = await conn.scalar(select(func.count()).select_from(carts)) or 0
        ordered = await conn.scalar(select(func.count()).select_from(carts).where(carts.c.ordered_at.is_not(None))) or 0
        abandoned = (
            await conn.scalar(select(func.count()).select_from(carts).where(carts.c.abandoned_at.is_not(None))) or 0
        )
        idle = await conn.scalar(select(func.count()).select_from(carts).where(carts.c.abandon_at.is_not(None))) or 0
        by_flow = {
            (flow, status): n
            for flow, status, n in await conn.execute(
                select(journeys.c.flow, journeys.c.status, func.count()).group_by(journeys.c.flow, journeys.c.status)
            )
        }
        by_status = {s: n for s, n in await conn.execute(select(steps.c.status, func.count()).group_by(steps.c.status))}
        reasons: Counter[str] = Counter()
        for reason, n in await conn.execute(
            select(steps.c.reason, func.count()).where(steps.c.status == StepStatus.SKIPPED).group_by(steps.c.reason)
        ):
            reasons[str(reason)] += n
        by_channel = {
            (channel, state): n
            for channel, state, n in await conn.execute(
                select(messages.c.channel, messages.c.state, func.count()).group_by(
                    messages.c.channel, messages.c.state
                )
            )
        }
    pending = by_status.get(StepStatus.PENDING, 0) + by_status.get(StepStatus.CLAIMED, 0)
    return Summary(
        carts=total,
        ordered=ordered,
        abandoned=abandoned,
        journeys_by_flow_status=by_flow,
        steps_by_status=by_status,
        skip_reasons=dict(reasons),
        messages_by_channel_state=by_channel,
        pending_steps=pending,
        idle_timers=idle,
    )
