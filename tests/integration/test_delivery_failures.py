"""Provider failures through the whole pipeline: outages are retried until delivered once, permanent refusals
fail the message with the provider's code, dead-letter it, and STOP records an SMS opt-out; fallbacks."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recovery.store.schema import customers, messages
from tests.fakes.fixtures import fake_twilio, smtp_sink
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_server import FakeTwilio
from tests.harness import cart, customer, event, eventually, running_service, service_settings

__all__ = ["fake_twilio", "smtp_sink"]
pytestmark = [pytest.mark.kafka]

FLOWS = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: sms, template: payment_failed, fallback: email}
"""
FAST_RETRIES = {"in_process_attempts": 2, "base_delay": "1s", "max_delay": "2s", "max_attempts": 30, "max_age": "5m"}


def provider_settings(kafka: str, tmp_path: Path, smtp: SmtpSink, twilio: FakeTwilio) -> Any:
    return service_settings(
        bootstrap=kafka,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        flows=FLOWS,
        guards={"frequency_cap": 0},
        channels={
            "transport": "providers",
            "outbox_dir": tmp_path / "outbox",
            "retry": FAST_RETRIES,
            "email": {"smtp_host": smtp.host, "smtp_port": smtp.port, "sender": "shop@example.com"},
            "sms": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "sender": "+15005550006",
                "api_base_url": twilio.url,
            },
        },
    )


def failures(count: int, *, sms: bool = True, email: bool = False) -> list[dict[str, Any]]:
    found = []
    for index in range(count):
        shopper = customer(index, email=email, sms=sms)
        shopper["phone"] = f"+336{20_000_000 + index}"
        found.append(
            event(
                "payment.failed",
                f"fail-cart-{index}",
                customer=shopper,
                cart=cart(),
                payment={"reason": "card_declined", "method": "card"},
            )
        )
    return found


async def message_rows(harness: Any) -> list[Any]:
    async with harness.service.engine.connect() as conn:
        return list((await conn.execute(select(messages))).mappings())


async def all_recorded_sent(harness: Any, count: int) -> bool:
    """``count`` message rows, every one recorded as sent."""
    rows = await message_rows(harness)
    return len(rows) == count and all(row["state"] == "sent" for row in rows)


async def test_an_sms_outage_of_20_seconds_delays_but_delivers_every_message_once(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """503 for 20 s, then recovery: each SMS arrives once, and the number of tries stays bounded."""
    fake_twilio.fail_for(20)
    started = time.monotonic()
    async with running_service(provider_settings(kafka_bootstrap, tmp_path, smtp_sink, fake_twilio)) as harness:
        await harness.send(*failures(5))
        await eventually(lambda: len(fake_twilio.messages) >= 5, timeout=60)
        await eventually(lambda: all_recorded_sent(harness, 5))  # outcomes written: no send is still in flight
        rows = await message_rows(harness)
    assert time.monotonic() - started >= 20
    assert sorted(Counter(m.to for m in fake_twilio.messages).values()) == [1] * 5
    assert {row["state"] for row in rows} == {"sent"}
    # ~20 s of outage with ≤2 s between durable tries and 2 quick tries each: far below a retry storm
    assert fake_twilio.create_attempts <= 5 * 2 * 15


async def test_smtp_down_then_up_delivers_each_email_once(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """The relay refuses connections for a while; the fallback emails arrive once it is back."""
    smtp_sink.stop()
    async with running_service(provider_settings(kafka_bootstrap, tmp_path, smtp_sink, fake_twilio)) as harness:
        await harness.send(*failures(3, sms=False, email=True))  # no SMS consent: the fallback email goes

        async def postponed() -> bool:
            return any(row["error_code"] for row in await message_rows(harness))

        await eventually(postponed, timeout=20)
        smtp_sink.start()
        await eventually(lambda: len(smtp_sink.received) >= 3, timeout=30)
        await eventually(lambda: all_recorded_sent(harness, 3))
        rows = await message_rows(harness)
    assert sorted(Counter(m.message["Message-ID"] for m in smtp_sink.received).values()) == [1, 1, 1]
    assert {(row["channel"], row["state"]) for row in rows} == {("email", "sent")}
    assert fake_twilio.messages == []


async def test_a_stop_reply_at_twilio_fails_the_message_dead_letters_it_and_records_the_opt_out(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """21610 (recipient replied STOP) and 21211 (invalid number) are final: no retry, code kept."""
    stop_reply, invalid = failures(2)
    fake_twilio.reject(stop_reply["customer"]["phone"], 21610)
    fake_twilio.reject(invalid["customer"]["phone"], 21211)
    async with running_service(provider_settings(kafka_bootstrap, tmp_path, smtp_sink, fake_twilio)) as harness:
        await harness.send(stop_reply, invalid)

        async def both_failed() -> bool:
            return sorted(row["state"] for row in await message_rows(harness)) == ["failed", "failed"]

        await eventually(both_failed, timeout=20)
        rows = await message_rows(harness)
        dead = await harness.read_topic("dead_letter", count=2)
        assert harness.service.engine is not None
        async with harness.service.engine.connect() as conn:
            opted = (await conn.execute(select(customers.c.customer_key, customers.c.consent_sms))).all()
    assert sorted(row["error_code"] for row in rows) == ["21211", "21610"]
    assert fake_twilio.create_attempts == 2, "a permanent error is never retried"
    assert sorted(d["code"] for d in dead) == ["21211", "21610"]
    assert all("+336" not in str(d) for d in dead), "no phone number on the dead-letter topic"
    consent = dict(opted)
    assert consent[stop_reply["customer"]["id"]] is False
    assert consent[invalid["customer"]["id"]] is True
