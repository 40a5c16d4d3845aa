"""Issue 9 point 5: SIGKILL three times while 60 SMS go out; with a 2-minute lease every SMS still arrives
within seconds of the last restart (heartbeat takeover), and none twice (reconciled at the provider).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.fixtures import fake_twilio
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.test_crash_and_replicas import payment_failures, publish
from tests.process import start_service, wait_until

__all__ = ["fake_twilio"]
pytestmark = [pytest.mark.kafka, pytest.mark.slow]

FLOWS = """
flows:
  - name: payment_failed
    trigger: payment.failed
    steps:
      - {name: retry_sms, after: 0s, channel: sms, template: payment_failed}
"""
TOTAL = 60


def write_config(workdir: Path, *, bootstrap: str, database_url: str, twilio: FakeTwilio) -> tuple[Path, str]:
    prefix = f"k{uuid.uuid4().hex[:8]}"
    (workdir / "flows.yaml").write_text(FLOWS, encoding="utf-8")
    topics = {
        role: {"name": f"{prefix}.{role}"}
        for role in ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages")
    }
    config = {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"{prefix}-group", "topics": topics},
        "database": {"url": database_url},
        "abandonment": {"idle_after": "1h"},
        "flows_file": str(workdir / "flows.yaml"),
        # The default 2-minute lease: only the heartbeat takeover can make the test finish in time.
        "scheduler": {"poll_interval": "100ms", "lease": "2m", "dead_after": "2s"},
        "http": {"port": 0},
        "guards": {"quiet_hours": {"channels": []}, "frequency_cap": 0},
        # The shop the messages speak for: run refuses email in the name of a store id (stores.md).
        "stores": {"default": {"name": "Maison Dupont", "address": "12 rue des Lilas, 75011 Paris, France"}},
        "security": {"link_secret": "takeover-secret-" + "x" * 32},
        "channels": {
            "transport": "providers",
            "email": {"smtp_host": "127.0.0.1", "smtp_port": 1, "sender": "shop@example.com"},
            "sms": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "sender": "+15005550006",
                "api_base_url": twilio.url,
            },
        },
    }
    path = workdir / "recovery.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path, f"{prefix}.payment"


def test_three_sigkills_during_sms_sends_delay_messages_by_seconds_not_a_lease(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path, fake_twilio: FakeTwilio
) -> None:
    config, topic = write_config(tmp_path, bootstrap=kafka_bootstrap, database_url=postgres_url, twilio=fake_twilio)
    fake_twilio.response_delay_s = 0.2  # slow provider: kills land with sends in flight
    events = payment_failures(TOTAL)
    for index, item in enumerate(events):
        item["customer"].update(phone=f"+336{10_000_000 + index}", consent={"email": False, "sms": True})
    asyncio.run(publish(kafka_bootstrap, topic, events))
    for kill in range(3):
        process = start_service(config, tmp_path / f"run-{kill}.log", outbox=tmp_path / "outbox")
        target = (kill + 1) * TOTAL // 5
        try:
            wait_until(lambda t=target: len(fake_twilio.messages) >= t, 90, f"{target} SMS", [process])
        finally:
            process.kill()
    assert len({m.to for m in fake_twilio.messages}) < TOTAL, "killed too late to test"
    last = start_service(config, tmp_path / "last.log", outbox=tmp_path / "outbox")
    try:
        # Well under the 2-minute lease the last killed worker's claims still hold.
        wait_until(lambda: len({m.to for m in fake_twilio.messages}) >= TOTAL, 45, "every SMS", [last])
    finally:
        last.stop()
    per_number = Counter(m.to for m in fake_twilio.messages)
    assert [n for n, count in per_number.items() if count > 1] == [], "an SMS was sent twice"
