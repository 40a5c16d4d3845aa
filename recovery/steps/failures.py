"""A step that failed for good, written one way (``fail_step``), whatever failed it.

Before the send (``decide``: its message had failed, its template cannot render), after it (``settle``: the
provider refused), or an unexpected exception while firing it (``record_crash``): the step and its message
fail, ``message.failed`` is published with a dead letter (``failure_rows``), and the journey completes when
this was its last open step. So a crash ends in a recorded state, never in an endless re-claim.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.clock import Clock
from recovery.messages import MessageIdentity
from recovery.states import ChannelName, FailReason, MessageState, PublishedType, StepStatus
from recovery.steps import step_rows
from recovery.steps.decide import FailStep
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


async def fail_step(
    conn: AsyncConnection,
    step_id: str,
    plan: FailStep,
    now: datetime,
    *,
    journey_id: str | None,
    detail: str | None = None,
) -> None:
    """Record ``plan``: the step (and its message) failed; publish and complete the journey when there is one.

    ``detail`` is the dead letter's explanation (default: the published reason); never the provider's text,
    which may quote the shopper's address.
    """
    message = plan.message
    if plan.reason is FailReason.TEMPLATE_ERROR:
        # The operator's only sign besides /metrics: every message of a broken template (or of events lacking
        # what it needs, e.g. no restore_url) fails. The renderer's text names the template, never a value.
        log.warning(
            "message not rendered; step failed: %s", plan.error, extra={"step": step_id, "journey_id": journey_id}
        )
    if message is not None:
        error = plan.error[:1000] if plan.error is not None else None
        await step_rows.set_message(
            conn, message.message_id, MessageState.FAILED, now, error_code=plan.error_code, error=error
        )
    await step_rows.set_step(conn, step_id, StepStatus.FAILED, now, reason=str(plan.reason))
    if journey_id is None:
        return
    if message is not None:
        published = plan.published_reason or str(plan.reason)
        await enqueue(conn, failure_rows(message, code=published, detail=detail or published, now=now))
    await step_rows.complete_if_done(conn, journey_id, now)


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
        plan = FailStep(reason=REASON, message=identity, error_code=REASON.value, error=error)
        await fail_step(conn, step.step_id, plan, now, journey_id=journey.journey_id if journey else None, detail=error)
    log.warning("step failed on an unexpected error", extra={"step": step.step_id, "error": type(exc).__name__})
