"""A message that failed for good, and an unexpected exception while firing one step: both end recorded.

Either way ``message.failed`` is published and a dead letter written (``failure_rows``), so a crash
ends in a recorded state, never in an endless re-claim.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.clock import Clock
from recovery.messages import MessageIdentity
from recovery.states import ChannelName, FailReason, MessageState, PublishedType, StepStatus
from recovery.steps import step_rows
from recovery.steps.step_rows import ClaimedStep
from recovery.store.outbox import enqueue, message_event

log = logging.getLogger(__name__)

REASON = FailReason.UNEXPECTED_ERROR


def identity_event(
    type_: PublishedType,
    message: MessageIdentity,
    now: datetime,
    reason: str | None = None,
    *,
    variant: str | None = None,
) -> dict[str, Any]:
    """An outbox row for ``recovery.messages`` about one message."""
    return message_event(type_=type_, now=now, **message.identity_fields(), reason=reason, variant=variant)


def failure_rows(message: MessageIdentity, *, code: str, detail: str, now: datetime) -> list[dict[str, Any]]:
    """The outbox rows of a message that failed for good: ``message.failed`` (reason ``code``) and a dead letter."""
    dead_letter = {
        "reason": f"message failed for good: {detail}",
        "source": "message",
        **message.identity_fields(),
        "code": code,
    }
    return [
        identity_event(PublishedType.MESSAGE_FAILED, message, now, reason=code),
        {"topic_role": "dead_letter", "key": message.cart_id, "payload": json.dumps(dead_letter), "created_at": now},
    ]


async def record_crash(engine: AsyncEngine, clock: Clock, step: ClaimedStep, exc: BaseException) -> None:
    """Fail the step and its message with a reason, publish ``message.failed`` and a dead letter.

    Only the error's class is stored: its text may quote the shopper's data (an address, a locale).
    """
    now = clock.now()
    error = f"{REASON}: {type(exc).__name__}"
    async with engine.begin() as conn:
        if not await step_rows.still_owned(conn, step):
            return  # another worker took the step over: its outcome is that worker's to record
        journey = await step_rows.load_journey(conn, step.journey_id)
        identity = MessageIdentity.for_step(
            journey_id=step.journey_id,
            cart_id=journey.cart_id if journey else step.cart_id,
            flow=journey.flow if journey else "",
            step=step.name,
            channel=ChannelName(step.channel),
        )
        await step_rows.set_message(
            conn, identity.message_id, MessageState.FAILED, now, error_code=REASON.value, error=error
        )
        await step_rows.set_step(conn, step.step_id, StepStatus.FAILED, now, reason=REASON.value)
        if journey is None:
            return
        await enqueue(conn, failure_rows(identity, code=REASON.value, detail=error, now=now))
        await step_rows.complete_if_done(conn, journey.journey_id, now)
    log.warning("step failed on an unexpected error", extra={"step": step.step_id, "error": type(exc).__name__})
