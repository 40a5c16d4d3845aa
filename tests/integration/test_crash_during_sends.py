"""SIGKILL while email and SMS are in flight: after a restart every message reached its server, SMS exactly
once (reconciled at the provider), email once per Message-ID (a resend after an unknown outcome carries the
same Message-ID, which receivers deduplicate).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.fixtures import fake_twilio, smtp_sink
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.test_crash_and_replicas import payment_failures, publish
from tests.process import start_service, wait_until

__all__ = ["fake_twilio", "smtp_sink"]
pytestmark = [pytest.mark.kafka, pytest.mark.slow]

FLOWS = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_email, after: 0s, channel: email, template: payment_failed}
      - {name: retry_sms, after: 0s, channel: sms, template: payment_failed}
"""
# channels.email.concurrency, the emails in flight: the most a kill can leave in an unknown state (SMS in flight,
# up to the default channels.sms.concurrency, are looked up by their key instead: none is sent twice)
EMAIL_CONCURRENCY = 8


def test_sigkill_between_provider_call_and_commit_sends_each_message_once(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio
) -> None:
    """Kill -9 mid-sends, restart: every SMS once, every email at least once and once per Message-ID."""
    prefix = f"c{uuid.uuid4().hex[:8]}"
    (tmp_path / "flows.yaml").write_text(FLOWS, encoding="utf-8")
    topics = {
        role: {"name": f"{prefix}.{role}"}
        for role in ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages")
    }
    config = {
        "kafka": {"bootstrap_servers": kafka_bootstrap, "group_id": f"{prefix}-group", "topics": topics},
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"},
        "abandonment": {"idle_after": "1h"},
        "flows_file": str(tmp_path / "flows.yaml"),
        "scheduler": {"poll_interval": "100ms", "lease": "3s"},
        "http": {"port": 0},
        "guards": {"quiet_hours": {"channels": []}, "frequency_cap": 0},
        # The shop the messages speak for: run refuses email in the name of a store id (stores.md).
        "stores": {"default": {"name": "Maison Dupont", "address": "12 rue des Lilas, 75011 Paris, France"}},
        "security": {"link_secret": "crash-test-secret-" + "x" * 32},
        "channels": {
            "transport": "providers",
            "email": {
                "smtp_host": smtp_sink.host,
                "smtp_port": smtp_sink.port,
                "sender": "shop@example.com",
                "concurrency": EMAIL_CONCURRENCY,
            },
            "sms": {
                "account_sid": fake_twilio.account_sid,
                "auth_token": fake_twilio.auth_token,
                "sender": "+15005550006",
                "api_base_url": fake_twilio.url,
            },
        },
    }
    path = tmp_path / "recovery.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    # Slow providers widen the window between "the provider has it" and "the database knows".
    smtp_sink.data_delay_s = 0.05
    fake_twilio.response_delay_s = 0.05
    total = 120
    events = payment_failures(total)
    for index, item in enumerate(events):
        item["customer"]["phone"] = f"+336{10_000_000 + index}"
        item["customer"]["consent"]["sms"] = True

    first = start_service(path, tmp_path / "first.log", outbox=tmp_path / "outbox")
    try:
        asyncio.run(publish(kafka_bootstrap, f"{prefix}.payment", events))
        wait_until(lambda: len(smtp_sink.received) + len(fake_twilio.messages) >= 60, 90, "first sends", [first])
    finally:
        first.kill()
    assert len(smtp_sink.received) < total or len(fake_twilio.messages) < total, "killed too late to test"

    second = start_service(path, tmp_path / "second.log", outbox=tmp_path / "outbox")
    try:
        wait_until(
            lambda: (
                len({m.message["Message-ID"] for m in smtp_sink.received}) >= total
                and len({m.to for m in fake_twilio.messages}) >= total
            ),
            120,
            "every message",
            [second],
        )
        time.sleep(4)  # past the 3 s claim lease: anything left in flight is reconciled by now
    finally:
        second.stop()

    sms_per_number = Counter(m.to for m in fake_twilio.messages)
    assert len(sms_per_number) == total
    assert [n for n, count in sms_per_number.items() if count > 1] == [], "an SMS was sent twice"
    emails = Counter(m.message["Message-ID"] for m in smtp_sink.received)
    assert len(emails) == total
    assert sum(emails.values()) - total <= EMAIL_CONCURRENCY, "more email resends than emails in flight"
