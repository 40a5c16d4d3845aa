"""In-process retries around one ``Channel.send``: transient errors only, bounded, with jittered backoff.

What is retried, and why:

* ``TransientError`` (connection refused, 5xx, 429, SMTP 4xx): the provider did not take the message,
  so sending again cannot duplicate it.
* ``PermanentError`` is never retried: the provider refused for good (invalid number, STOP, SMTP 5xx).
* ``OutcomeUnknownError`` is never retried here although it is ``retriable`` for the scheduler: the
  provider may already have the message, so it must be reconciled with ``Channel.lookup`` first.

A provider's ``retry_after`` is honoured when it fits within ``max_wait_s``; a longer one ends the
in-process attempts and re-raises the ``TransientError`` (with its ``retry_after``) so the durable
scheduler puts the step back for later instead of holding a worker asleep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_exponential_jitter

from recovery.channels.base import Channel, Delivery, OutgoingMessage
from recovery.errors import TransientError

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


async def send_with_retry(
    channel: Channel,
    message: OutgoingMessage,
    *,
    attempts: int = 3,
    base_wait_s: float = 0.5,
    max_wait_s: float = 10.0,
    sleep: Sleep = asyncio.sleep,
) -> Delivery:
    """Send ``message``, retrying transient failures up to ``attempts`` tries in all."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    backoff = wait_exponential_jitter(multiplier=base_wait_s, max=max_wait_s, jitter=base_wait_s)

    def wait(state: RetryCallState) -> float:
        retry_after = _retry_after(state)
        return backoff(state) if retry_after is None else retry_after

    def stop(state: RetryCallState) -> bool:
        retry_after = _retry_after(state)
        too_long = retry_after is not None and retry_after > max_wait_s
        return state.attempt_number >= attempts or too_long

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "transient send failure, retrying",
            extra={
                "channel": str(channel.name),
                "message_id": message.message_id,
                "journey_id": message.journey_id,
                "step": message.step,
                "attempt": state.attempt_number,
                "code": getattr(error, "code", None),
                "wait_s": state.upcoming_sleep,
            },
        )

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop,
        wait=wait,
        sleep=sleep,
        before_sleep=log_retry,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await channel.send(message)
    # AsyncRetrying either returns from inside the loop or re-raises the last error (reraise=True).
    raise AssertionError("unreachable: tenacity ended without a result or an error")


def _retry_after(state: RetryCallState) -> float | None:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, TransientError) and error.retry_after is not None:
        return max(0.0, error.retry_after)
    return None
