"""An unexpected exception while firing one step ends in a recorded state, never in an endless re-claim."""

from __future__ import annotations

import json
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.clock import Clock
from recovery.states import MessageState, PublishedType, StepStatus
from recovery.store import step_rows
from recovery.store.outbox import enqueue, message_event
from recovery.store.step_rows import ClaimedStep

log = logging.getLogger(__name__)

REASON = "unexpected_error"


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
        message_id = f"{step.journey_id}:{step.name}"
        await step_rows.set_message(conn, message_id, MessageState.FAILED, now, error_code=REASON, error=error)
        await step_rows.set_step(conn, step.step_id, StepStatus.FAILED, now, reason=REASON)
        if journey is None:
            return
        await enqueue(
            conn,
            [
                message_event(
                    type_=PublishedType.MESSAGE_FAILED,
                    now=now,
                    cart_id=journey.cart_id,
                    journey_id=journey.journey_id,
                    flow=journey.flow,
                    step=step.name,
                    channel=step.channel,
                    reason=REASON,
                    message_id=message_id,
                ),
                {
                    "topic_role": "dead_letter",
                    "key": journey.cart_id,
                    "payload": json.dumps(
                        {
                            "reason": f"message failed for good: {error}",
                            "source": "message",
                            "message_id": message_id,
                            "journey_id": journey.journey_id,
                            "cart_id": journey.cart_id,
                            "flow": journey.flow,
                            "step": step.name,
                            "channel": step.channel,
                            "code": REASON,
                        }
                    ),
                    "created_at": now,
                },
            ],
        )
        await step_rows.complete_if_done(conn, journey.journey_id, now)
    log.warning("step failed on an unexpected error", extra={"step": step.step_id, "error": type(exc).__name__})
