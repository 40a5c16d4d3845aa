"""send_with_retry: which failures are retried, how long it waits, when it gives up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recovery.channels.base import Delivery, OutgoingMessage
from recovery.channels.retry import send_with_retry
from recovery.channels.sms import _parse_retry_after
from recovery.errors import OutcomeUnknownError, PermanentError, RecoveryError, TransientError
from recovery.states import ChannelName

MESSAGE = OutgoingMessage(
    message_id="j1:s1",
    journey_id="j1",
    cart_id="c1",
    flow="abandoned_cart",
    step="s1",
    channel=ChannelName.SMS,
    to="+33612345678",
    text="hello",
)
DELIVERED = Delivery(provider_id="P1")


class ScriptedChannel:
    """A channel that fails with the scripted errors, in order, then delivers."""

    name = ChannelName.SMS

    def __init__(self, *errors: RecoveryError) -> None:
        self._errors = list(errors)
        self.calls = 0

    async def send(self, message: OutgoingMessage) -> Delivery:
        self.calls += 1
        if self._errors:
            raise self._errors.pop(0)
        return DELIVERED

    async def lookup(self, message: OutgoingMessage) -> Delivery | None:
        return None

    async def aclose(self) -> None:
        return None


class RecordedSleep:
    """Writes waits down instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_transient_errors_are_retried_until_delivery() -> None:
    """Two transient failures, then the third attempt delivers."""
    channel = ScriptedChannel(TransientError("503"), TransientError("503"))
    sleep = RecordedSleep()
    assert await send_with_retry(channel, MESSAGE, attempts=3, sleep=sleep) == DELIVERED
    assert channel.calls == 3
    assert len(sleep.waits) == 2


async def test_the_last_transient_error_is_raised_once_attempts_run_out() -> None:
    """The caller gets the provider's own error, not a tenacity wrapper."""
    last = TransientError("third", code="20503")
    channel = ScriptedChannel(TransientError("first"), TransientError("second"), last)
    with pytest.raises(TransientError) as caught:
        await send_with_retry(channel, MESSAGE, attempts=3, sleep=RecordedSleep())
    assert caught.value is last
    assert channel.calls == 3


@pytest.mark.parametrize(
    "error",
    [PermanentError("STOP", code="21610"), OutcomeUnknownError("read timeout")],
    ids=["permanent", "outcome-unknown"],
)
async def test_permanent_and_outcome_unknown_errors_are_never_retried(error: RecoveryError) -> None:
    """A refusal stays a refusal; an unknown outcome must be reconciled before any resend."""
    channel = ScriptedChannel(error)
    with pytest.raises(type(error)):
        await send_with_retry(channel, MESSAGE, attempts=5, sleep=RecordedSleep())
    assert channel.calls == 1


async def test_backoff_grows_exponentially_with_jitter_and_stays_under_the_cap() -> None:
    """Waits follow base·2ⁿ plus up to one base of jitter, never above max_wait_s."""
    channel = ScriptedChannel(*(TransientError("503") for _ in range(5)))
    sleep = RecordedSleep()
    await send_with_retry(channel, MESSAGE, attempts=6, base_wait_s=1.0, max_wait_s=6.0, sleep=sleep)
    bounds = [(1, 2), (2, 3), (4, 5), (6, 6), (6, 6)]
    assert len(sleep.waits) == len(bounds)
    for wait, (low, high) in zip(sleep.waits, bounds, strict=True):
        assert low <= wait <= high


async def test_a_provider_retry_after_replaces_the_backoff() -> None:
    """Retry-After says when to come back; it is honoured as is."""
    channel = ScriptedChannel(TransientError("429", code="20429", retry_after=3.0))
    sleep = RecordedSleep()
    await send_with_retry(channel, MESSAGE, attempts=3, base_wait_s=0.01, max_wait_s=5.0, sleep=sleep)
    assert sleep.waits == [3.0]


async def test_a_retry_after_above_the_cap_ends_the_attempts_at_once() -> None:
    """The durable scheduler, not a sleeping worker, waits out a long Retry-After."""
    too_long = TransientError("429", code="20429", retry_after=600.0)
    channel = ScriptedChannel(too_long)
    with pytest.raises(TransientError) as caught:
        await send_with_retry(channel, MESSAGE, attempts=3, max_wait_s=30.0, sleep=RecordedSleep())
    assert caught.value is too_long
    assert channel.calls == 1


async def test_a_single_attempt_means_no_retry() -> None:
    """attempts=1 sends once."""
    channel = ScriptedChannel(TransientError("503"))
    with pytest.raises(TransientError):
        await send_with_retry(channel, MESSAGE, attempts=1, sleep=RecordedSleep())
    assert channel.calls == 1


async def test_zero_attempts_is_refused() -> None:
    """A budget of no attempt at all is a programming error."""
    with pytest.raises(ValueError, match="at least 1"):
        await send_with_retry(ScriptedChannel(), MESSAGE, attempts=0)


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),  # an HTTP date is counted from the caller's now
        ("Thu, 01 Jan 2026 12:00:30 -0000", 30.0),
        ("Thu, 01 Jan 2026 11:59:00 GMT", 0.0),  # a date already past: retry at once
        ("soon", None),
        (None, None),
    ],
)
def test_twilio_retry_after_is_read_against_the_given_now(header: str | None, seconds: float | None) -> None:
    """A Retry-After date means as many seconds as lie between the service's clock and that date."""
    assert _parse_retry_after(header, now=NOW) == seconds
