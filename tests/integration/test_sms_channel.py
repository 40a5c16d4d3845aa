"""The SMS channel: the real twilio client against a local Twilio-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from recovery.channels.base import OutgoingMessage
from recovery.channels.retry import send_with_retry
from recovery.channels.sms import SmsChannel, SmsConfig
from recovery.clock import ManualClock
from recovery.errors import OutcomeUnknownError, PermanentError, TransientError
from recovery.states import ChannelName
from tests.fakes import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio, free_port

SENDER = "+15005550006"
CALLBACK = "https://recovery.example/webhooks/twilio/status"
MESSAGE = OutgoingMessage(
    message_id="journey-7:sms_offer",
    journey_id="journey-7",
    cart_id="cart-7",
    flow="abandoned_cart",
    step="sms_offer",
    channel=ChannelName.SMS,
    to="+33612345678",
    text="Votre panier vous attend : https://shop.example/r/7 STOP 36180",
    locale="fr",
)


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A started Twilio-compatible server (same as ``tests.fakes.fixtures.fake_twilio``)."""
    with FakeTwilio() as server:
        yield server


def config_for(server: FakeTwilio, **overrides: Any) -> SmsConfig:
    """An SmsConfig pointing at ``server`` with short timeouts."""
    config = SmsConfig(
        account_sid=server.account_sid,
        auth_token=server.auth_token,
        sender=SENDER,
        status_callback_url=CALLBACK,
        api_base_url=server.url,
        timeout_s=2.0,
    )
    return replace(config, **overrides)


@pytest.fixture
async def channel(fake_twilio: FakeTwilio) -> AsyncIterator[SmsChannel]:
    """An SmsChannel on the fake server, closed after the test."""
    sms = SmsChannel(config_for(fake_twilio))
    yield sms
    await sms.aclose()


class RecordedSleep:
    """A ``sleep`` for ``send_with_retry`` that only writes the waits down."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_the_twilio_client_delivers_one_sms_with_a_status_callback(
    fake_twilio: FakeTwilio, channel: SmsChannel
) -> None:
    """One POST reaches the configured base URL with To, From, Body and a tagged StatusCallback."""
    delivery = await channel.send(MESSAGE)

    [sent] = fake_twilio.messages
    assert (sent.to, sent.from_, sent.body) == (MESSAGE.to, SENDER, MESSAGE.text)
    assert sent.status_callback is not None
    callback = urlsplit(sent.status_callback)
    assert callback._replace(query="").geturl() == CALLBACK
    assert parse_qs(callback.query) == {"message_id": [MESSAGE.message_id]}
    assert delivery.provider_id == sent.sid
    assert delivery.provider_id is not None and delivery.provider_id.startswith("SM")
    assert delivery.detail["status"] == "queued"


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("Votre panier vous attend, élégant !", "GSM-7", 1),
        ("Votre cœur de panier vous attend !", "UCS-2", 1),
        ("é" * 161, "GSM-7", 2),
        ("œ" * 71, "UCS-2", 2),
    ],
    ids=["e-acute-is-gsm", "oe-ligature-is-ucs2", "gsm-two-parts", "ucs2-two-parts"],
)
async def test_encoding_and_segments_are_recorded_in_the_delivery(
    channel: SmsChannel, text: str, encoding: str, segments: int
) -> None:
    """É-acute is in the GSM-7 alphabet, the œ ligature is not and makes the SMS UCS-2; Twilio agrees."""
    delivery = await channel.send(replace(MESSAGE, text=text))
    assert delivery.detail["encoding"] == encoding
    assert delivery.detail["segments"] == segments
    assert delivery.detail["provider_segments"] == segments


async def test_a_503_then_recovery_is_delivered_once_within_the_attempt_budget(
    fake_twilio: FakeTwilio, channel: SmsChannel
) -> None:
    """Two 503s then success: three requests, one message, two short backoff waits."""
    fake_twilio.fail_next(503, count=2)
    sleep = RecordedSleep()
    delivery = await send_with_retry(channel, MESSAGE, attempts=3, base_wait_s=0.01, sleep=sleep)
    assert delivery.provider_id == fake_twilio.messages[0].sid
    assert len(fake_twilio.messages) == 1
    assert fake_twilio.create_attempts == 3
    assert len(sleep.waits) == 2


async def test_a_lasting_outage_stops_after_the_attempt_budget_with_a_transient_error(
    fake_twilio: FakeTwilio, channel: SmsChannel
) -> None:
    """Retries are bounded: the scheduler takes over after the last attempt."""
    fake_twilio.fail_for(seconds=30, status=503)
    with pytest.raises(TransientError) as caught:
        await send_with_retry(channel, MESSAGE, attempts=3, sleep=RecordedSleep())
    assert caught.value.code == "20503"
    assert fake_twilio.create_attempts == 3
    assert fake_twilio.messages == []


@pytest.mark.parametrize("code", [21211, 21610, 21614])
@pytest.mark.parametrize("problem_details", [False, True], ids=["rest-exception", "service-exception"])
async def test_a_refused_number_is_a_permanent_error_with_twilios_code(code: int, problem_details: bool) -> None:
    """Invalid number, STOP, landline: never retried, whichever exception class twilio raises."""
    with FakeTwilio(problem_details=problem_details) as server:
        server.reject(MESSAGE.to, code)
        sms = SmsChannel(config_for(server))
        try:
            with pytest.raises(PermanentError) as caught:
                await send_with_retry(sms, MESSAGE, attempts=3, sleep=RecordedSleep())
        finally:
            await sms.aclose()
        assert caught.value.code == str(code)
        assert server.create_attempts == 1


async def test_a_5xx_in_problem_details_form_is_still_transient() -> None:
    """TwilioServiceException (RFC 9457 body) maps like TwilioRestException."""
    with FakeTwilio(problem_details=True) as server:
        server.fail_next(503)
        sms = SmsChannel(config_for(server))
        try:
            with pytest.raises(TransientError):
                await sms.send(MESSAGE)
        finally:
            await sms.aclose()


async def test_a_429_carries_retry_after_and_the_retry_waits_that_long(
    fake_twilio: FakeTwilio, channel: SmsChannel
) -> None:
    """Twilio's Retry-After is honoured instead of the exponential backoff."""
    fake_twilio.fail_next(429, retry_after=1)
    with pytest.raises(TransientError) as caught:
        await channel.send(MESSAGE)
    assert caught.value.code == "20429"
    assert caught.value.retry_after == 1.0

    fake_twilio.fail_next(429, retry_after=1)
    sleep = RecordedSleep()
    await send_with_retry(channel, MESSAGE, attempts=3, base_wait_s=0.01, max_wait_s=5, sleep=sleep)
    assert sleep.waits == [1.0]
    assert len(fake_twilio.messages) == 1


async def test_a_retry_after_longer_than_the_cap_is_left_to_the_scheduler(
    fake_twilio: FakeTwilio, channel: SmsChannel
) -> None:
    """No worker sleeps for minutes: the error goes up with its retry_after after one attempt."""
    fake_twilio.fail_next(429, retry_after=120)
    with pytest.raises(TransientError) as caught:
        await send_with_retry(channel, MESSAGE, attempts=3, max_wait_s=10, sleep=RecordedSleep())
    assert caught.value.retry_after == 120.0
    assert fake_twilio.create_attempts == 1


async def test_bad_credentials_are_refused_for_good(fake_twilio: FakeTwilio) -> None:
    """A 401 (Twilio 20003) is a 4xx: permanent, with the code for the operator."""
    sms = SmsChannel(config_for(fake_twilio, auth_token="wrong"))
    try:
        with pytest.raises(PermanentError) as caught:
            await sms.send(MESSAGE)
    finally:
        await sms.aclose()
    assert caught.value.code == "20003"


async def test_an_unreachable_api_is_a_transient_error() -> None:
    """Connection refused: nothing was sent, so retrying is safe."""
    config = SmsConfig(
        account_sid=DEFAULT_ACCOUNT_SID,
        auth_token=DEFAULT_AUTH_TOKEN,
        sender=SENDER,
        status_callback_url=CALLBACK,
        api_base_url=f"http://127.0.0.1:{free_port()}",
        timeout_s=1.0,
    )
    sms = SmsChannel(config)
    try:
        with pytest.raises(TransientError) as caught:
            await sms.send(MESSAGE)
    finally:
        await sms.aclose()
    assert caught.value.code == "connect"


async def test_no_answer_after_the_request_is_outcome_unknown_and_lookup_finds_the_message(
    fake_twilio: FakeTwilio,
) -> None:
    """A read timeout is never "not sent": the reconciler's lookup finds what Twilio accepted."""
    fake_twilio.response_delay_s = 1.0
    sms = SmsChannel(config_for(fake_twilio, timeout_s=0.3))
    try:
        with pytest.raises(OutcomeUnknownError):
            await send_with_retry(sms, MESSAGE, attempts=3, sleep=RecordedSleep())
        assert fake_twilio.create_attempts == 1
        found = await sms.lookup(MESSAGE)
    finally:
        await sms.aclose()
    assert found is not None
    assert found.provider_id == fake_twilio.messages[0].sid


async def test_lookup_finds_a_sent_message_and_returns_none_for_an_unknown_one(
    fake_twilio: FakeTwilio, channel: SmsChannel
) -> None:
    """Matched on recipient, sender, recent DateSent and exact body."""
    delivery = await channel.send(MESSAGE)
    found = await channel.lookup(MESSAGE)
    assert found is not None and found.provider_id == delivery.provider_id
    assert await channel.lookup(replace(MESSAGE, text="another text")) is None
    assert await channel.lookup(replace(MESSAGE, to="+33699999999")) is None


async def test_lookup_ignores_messages_older_than_its_window(fake_twilio: FakeTwilio) -> None:
    """Only messages sent since ``now - lookup_window`` are considered."""
    later = ManualClock(datetime.now(UTC) + timedelta(days=3))
    sms = SmsChannel(config_for(fake_twilio, lookup_window=timedelta(days=2)), clock=later)
    try:
        await sms.send(MESSAGE)
        assert await sms.lookup(MESSAGE) is None
    finally:
        await sms.aclose()


async def test_lookup_pages_through_a_busy_recipient_and_gives_up_past_its_page_budget(
    fake_twilio: FakeTwilio, channel: SmsChannel
) -> None:
    """The oldest of 55 messages sits on page two; with a one-page budget the answer is "cannot tell"."""
    for n in range(55):
        await channel.send(replace(MESSAGE, text=f"message {n}"))
    oldest = replace(MESSAGE, text="message 0")
    found = await channel.lookup(oldest)
    assert found is not None and found.provider_id == fake_twilio.messages[0].sid

    short = SmsChannel(config_for(fake_twilio, lookup_max_pages=1))
    try:
        with pytest.raises(OutcomeUnknownError):
            await short.lookup(oldest)
    finally:
        await short.aclose()


async def test_lookup_that_cannot_reach_twilio_raises_outcome_unknown() -> None:
    """Unable to ask is not "not found": the caller must not resend."""
    config = SmsConfig(
        account_sid=DEFAULT_ACCOUNT_SID,
        auth_token=DEFAULT_AUTH_TOKEN,
        sender=SENDER,
        status_callback_url=CALLBACK,
        api_base_url=f"http://127.0.0.1:{free_port()}",
        timeout_s=1.0,
    )
    sms = SmsChannel(config)
    try:
        with pytest.raises(OutcomeUnknownError):
            await sms.lookup(MESSAGE)
    finally:
        await sms.aclose()


async def test_a_messaging_service_sender_is_sent_as_messaging_service_sid(fake_twilio: FakeTwilio) -> None:
    """A sender starting with MG is a Messaging Service, not a From number."""
    service = "MG" + "1" * 32
    sms = SmsChannel(config_for(fake_twilio, sender=service))
    try:
        await sms.send(MESSAGE)
        assert await sms.lookup(MESSAGE) is not None
    finally:
        await sms.aclose()
    [sent] = fake_twilio.messages
    assert (sent.messaging_service_sid, sent.from_) == (service, None)
