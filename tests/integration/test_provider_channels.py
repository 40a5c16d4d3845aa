"""With ``channels.transport: providers`` the pipeline sends real email (SMTP) and SMS (Twilio API)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fakes.fixtures import fake_twilio, smtp_sink
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_server import FakeTwilio
from tests.harness import cart, customer, event, eventually, running_service, service_settings

__all__ = ["fake_twilio", "smtp_sink"]
pytestmark = [pytest.mark.kafka]

FLOWS = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 0s, channel: email, template: cart_reminder}
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_payment, after: 0s, channel: sms, template: payment_failed}
"""


async def test_abandoned_cart_email_reaches_the_smtp_server_and_payment_failure_sms_reaches_twilio(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """One email over SMTP with a stable Message-ID, one SMS through the real twilio client."""
    settings = service_settings(
        bootstrap=kafka_bootstrap,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        workdir=tmp_path,
        flows=FLOWS,
        channels={
            "transport": "providers",
            "outbox_dir": tmp_path / "outbox",
            "email": {"smtp_host": smtp_sink.host, "smtp_port": smtp_sink.port, "sender": "shop@example.com"},
            "sms": {
                "account_sid": fake_twilio.account_sid,
                "auth_token": fake_twilio.auth_token,
                "sender": "+15005550006",
                "api_base_url": fake_twilio.url,
            },
        },
    )
    async with running_service(settings) as harness:
        shopper = customer(email=True, sms=True)
        await harness.send(event("cart.updated", "cart-p1", customer=shopper, cart=cart()))
        await eventually(lambda: len(smtp_sink.received) >= 1, timeout=20)
        await harness.send(
            event(
                "payment.failed",
                "cart-p2",
                customer=customer(2, email=False, sms=True),
                cart=cart(),
                payment={"reason": "card_declined", "method": "card"},
            )
        )
        await eventually(lambda: len(fake_twilio.messages) >= 1, timeout=20)
        await asyncio.sleep(1)
        [mail] = smtp_sink.received
        assert mail.rcpt_tos == ("shopper1@example.com",)
        assert mail.message["Message-ID"]
        [sms] = fake_twilio.messages
        assert sms.to == "+33612345678"
