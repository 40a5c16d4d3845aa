"""Day one in a real shop (issue 8): the service configured only by RECOVERY_* variables, events on the
real broker, email to the SMTP server and SMS to the Twilio-shaped server."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from recovery.app.lifecycle import TaskDied
from recovery.app.wiring import build_service
from recovery.settings import Settings, load_settings
from recovery.store.schema import consent_ledger, steps
from tests.fakes.fixtures import fake_twilio, smtp_sink
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_server import FakeTwilio
from tests.harness import Harness, cart, customer, event, eventually, running_service

__all__ = ["fake_twilio", "smtp_sink"]
pytestmark = [pytest.mark.kafka]

EMAIL_FLOW = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    reentry_after: 0s
    steps:
      - {name: reminder, after: 0s, channel: email, template: cart_reminder}
"""
SMS_FLOW = """
flows:
  - name: payment_failed
    trigger: payment.failed
    reentry_after: 0s
    steps:
      - {name: retry_payment, after: 0s, channel: sms, template: payment_failed}
"""
OFFER_FLOW = """
flows:
  - name: payment_failed
    trigger: payment.failed
    reentry_after: 0s
    steps:
      - {name: call_offer, after: 0s, channel: callback, mode: offer, template: callback_offer}
"""
PAYMENT = {"reason": "card_declined", "method": "card"}


def operator_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bootstrap: str, smtp: SmtpSink, twilio: FakeTwilio, flows: str
) -> Settings:
    """What an operator sets: provider, database, Kafka and link secret variables; nothing test-only."""
    prefix = f"d{uuid.uuid4().hex[:10]}"
    (tmp_path / "flows.yaml").write_text(flows, encoding="utf-8")
    variables = {
        "KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA__GROUP_ID": f"{prefix}-group",
        "DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        "FLOWS_FILE": str(tmp_path / "flows.yaml"),
        "ABANDONMENT__IDLE_AFTER": "1s",
        "SECURITY__LINK_SECRET": "day-one-secret-" + prefix,
        "HTTP__PORT": "0",
        "CHANNELS__EMAIL__SMTP_HOST": smtp.host,
        "CHANNELS__EMAIL__SMTP_PORT": str(smtp.port),
        "CHANNELS__EMAIL__SENDER": "shop@example.com",
        "CHANNELS__SMS__ACCOUNT_SID": twilio.account_sid,
        "CHANNELS__SMS__AUTH_TOKEN": twilio.auth_token,
        "CHANNELS__SMS__SENDER": "+15005550006",
        "CHANNELS__SMS__API_BASE_URL": twilio.url,
        "GUARDS__QUIET_HOURS__CHANNELS": "[]",
        "GUARDS__FREQUENCY_CAP": "0",
        "SCHEDULER__POLL_INTERVAL": "100ms",
    }
    for role in ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages"):
        variables[f"KAFKA__TOPICS__{role.upper()}__NAME"] = f"{prefix}.{role}"
    for name, value in variables.items():
        monkeypatch.setenv("RECOVERY_" + name, value)
    monkeypatch.delenv("RECOVERY_CONFIG", raising=False)
    return load_settings(None)


async def step_reason(harness: Harness, cart_id: str) -> tuple[str, str | None] | None:
    """The (status, reason) of the cart's step once it is decided, else None."""
    assert harness.service.engine is not None
    async with harness.service.engine.connect() as conn:
        row = (await conn.execute(select(steps.c.status, steps.c.reason).where(steps.c.cart_id == cart_id))).first()
    if row is None or row.status in ("pending", "claimed"):
        return None
    return (row.status, row.reason)


async def ledger_says(harness: Harness, customer_key: str, channel: str) -> bool | None:
    assert harness.service.engine is not None
    async with harness.service.engine.connect() as conn:
        c = consent_ledger.c
        query = select(c.consent).where(c.customer_key == customer_key, c.channel == channel)
        return await conn.scalar(query.order_by(c.recorded_at.desc(), c.id.desc()).limit(1))


def local_url(harness: Harness, public: str) -> str:
    """A public link of the service, sent to where the test's service actually listens."""
    path = re.sub(r"^https?://[^/]+", "", public)
    return f"http://127.0.0.1:{harness.service.http_port}{path}"


async def test_configured_providers_send_by_default_and_one_click_unsubscribe_holds(
    kafka_bootstrap: str,
    tmp_path: Path,
    smtp_sink: SmtpSink,
    fake_twilio: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No channels.transport set: email reaches SMTP with RFC 8058 headers; one POST stops further email,
    even when the next cart carries the shop's stale consent, and for a guest keyed by email address."""
    settings = operator_settings(monkeypatch, tmp_path, kafka_bootstrap, smtp_sink, fake_twilio, EMAIL_FLOW)
    assert settings.channels.transport == "providers"
    caplog.set_level(logging.INFO, logger="recovery.app.service")
    async with running_service(settings) as harness, httpx.AsyncClient() as http:
        said = [record.getMessage() for record in caplog.records if record.getMessage().startswith("channel ")]
        assert f"channel email sends to SMTP server {smtp_sink.host}:{smtp_sink.port}" in said
        assert f"channel sms sends to Twilio API at {fake_twilio.url}" in said
        assert not any(fake_twilio.auth_token in line for line in said)
        shopper = customer(email=True)
        guest = {**customer(2, email=True), "id": None, "email": "guest@example.com"}
        for cart_id, who in (("c-known-1", shopper), ("c-guest-1", guest)):
            await harness.send(event("cart.updated", cart_id, customer=who, cart=cart()))
        await eventually(lambda: len(smtp_sink.received) >= 2, timeout=30)
        for mail in smtp_sink.received:
            assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            [url] = re.findall(r"<(https?://[^>]+/u/[^>]+)>", mail.message["List-Unsubscribe"])
            response = await http.post(local_url(harness, url), content=b"List-Unsubscribe=One-Click")
            assert response.status_code == 200
        # The shop still says "consent: email true" on the next carts: the opt-outs hold.
        await harness.send(event("cart.updated", "c-known-2", customer=shopper, cart=cart()))
        await harness.send(event("cart.updated", "c-guest-2", customer=guest, cart=cart()))
        for cart_id in ("c-known-2", "c-guest-2"):
            await eventually(lambda c=cart_id: step_reason(harness, c), timeout=30)
            assert await step_reason(harness, cart_id) == ("skipped", "no_consent")
        assert len(smtp_sink.received) == 2


async def test_a_21610_opt_out_holds_against_stale_cart_consent_until_a_newer_consent_event(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twilio 21610 records an SMS opt-out; stale ``sms: true`` in events cannot undo it, a later
    ``consent.changed`` can."""
    settings = operator_settings(monkeypatch, tmp_path, kafka_bootstrap, smtp_sink, fake_twilio, SMS_FLOW)
    shopper = customer(sms=True)
    fake_twilio.reject(shopper["phone"], 21610)
    async with running_service(settings) as harness:
        await harness.send(event("payment.failed", "p-1", customer=shopper, cart=cart(), payment=PAYMENT))
        await eventually(lambda: step_reason(harness, "p-1"), timeout=30)
        assert await ledger_says(harness, shopper["id"], "sms") is False
        fake_twilio.reset()
        await harness.send(event("payment.failed", "p-2", customer=shopper, cart=cart(), payment=PAYMENT))
        await eventually(lambda: step_reason(harness, "p-2"), timeout=30)
        assert await step_reason(harness, "p-2") == ("skipped", "no_consent")
        assert fake_twilio.messages == []
        opt_in: dict[str, Any] = {"id": shopper["id"], "phone": shopper["phone"], "consent": {"sms": True}}
        await harness.send(event("consent.changed", "p-3", at=datetime.now(UTC), customer=opt_in))
        await eventually(lambda: _is(ledger_says(harness, shopper["id"], "sms"), True), timeout=30)
        await harness.send(event("payment.failed", "p-3", customer=shopper, cart=cart(), payment=PAYMENT))
        await eventually(lambda: len(fake_twilio.messages) >= 1, timeout=30)


async def _is(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def test_a_callback_offer_by_sms_needs_sms_consent_too(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Phone consent alone does not allow the SMS that carries a callback offer."""
    settings = operator_settings(monkeypatch, tmp_path, kafka_bootstrap, smtp_sink, fake_twilio, OFFER_FLOW)
    phone_only = customer(sms=False)
    phone_only["consent"]["phone"] = True
    both = customer(3, sms=True)
    both["consent"]["phone"] = True
    async with running_service(settings) as harness:
        await harness.send(event("payment.failed", "o-1", customer=phone_only, cart=cart(), payment=PAYMENT))
        await harness.send(event("payment.failed", "o-2", customer=both, cart=cart(), payment=PAYMENT))
        for cart_id in ("o-1", "o-2"):
            await eventually(lambda c=cart_id: step_reason(harness, c), timeout=30)
        assert await step_reason(harness, "o-1") == ("skipped", "no_consent")
        assert await step_reason(harness, "o-2") == ("sent", None)
        assert len(fake_twilio.messages) == 1


async def test_an_order_after_the_last_steps_click_publishes_converted_and_the_refund(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journey already completed (its only step sent): the order still publishes journey.converted
    once, and the refund journey.refunded with its amount."""
    settings = operator_settings(monkeypatch, tmp_path, kafka_bootstrap, smtp_sink, fake_twilio, EMAIL_FLOW)
    async with running_service(settings) as harness, httpx.AsyncClient() as http:
        await harness.send(event("cart.updated", "k-1", customer=customer(), cart=cart()))
        await eventually(lambda: len(smtp_sink.received) >= 1, timeout=30)
        body = smtp_sink.received[0].message.get_body(("plain",))
        assert body is not None
        [link, *_] = re.findall(r"https?://[^\s\"<>]+/r/[A-Za-z0-9._-]+", body.get_content())
        assert (await http.get(local_url(harness, link))).status_code in (302, 303, 307)
        order = {"id": "ord-k1", "value": "189.80", "currency": "EUR"}
        await harness.send(event("order.completed", "k-1", order=order))
        await harness.send(event("order.completed", "k-1", order=order))  # redelivered: still once
        refund = {"id": "ord-k1", "value": "40.00", "currency": "EUR"}
        found: list[dict[str, Any]] = []

        async def published(kinds: set[str], count: int) -> bool:
            found[:] = [m for m in await harness.read_topic("messages", count=100, timeout=1) if m["type"] in kinds]
            return len(found) >= count

        await eventually(lambda: published({"journey.converted"}, 1), timeout=30)
        await harness.send(event("order.refunded", "k-1", order=refund))
        await eventually(lambda: published({"journey.converted", "journey.refunded"}, 2), timeout=30)
    converted = [m for m in found if m["type"] == "journey.converted"]
    refunded = [m for m in found if m["type"] == "journey.refunded"]
    assert [(m["cart_id"], m["revenue"]) for m in converted] == [("k-1", pytest.approx(189.80))]
    assert [m["revenue"] for m in refunded] == [pytest.approx(40.0)]
    assert converted[0]["journey_id"] == refunded[0]["journey_id"]


def test_recovery_run_refuses_to_start_on_a_broken_template(tmp_path: Path) -> None:
    """The full template check runs before anything is consumed; the same file:line lines are printed."""
    templates = tmp_path / "templates"
    shutil.copytree("templates", templates)
    broken = templates / "en" / "cart_reminder.sms.txt"
    broken.write_text(broken.read_text(encoding="utf-8") + "{{ cart.valeu_typo }}\n", encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "RECOVERY_TEMPLATES_DIR": str(templates),
        "RECOVERY_SECURITY__LINK_SECRET": "s" * 32,
        "RECOVERY_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        "RECOVERY_CHANNELS__TRANSPORT": "outbox",
    }
    done = subprocess.run(
        [sys.executable, "-m", "recovery.cli.main", "run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert f"{broken}:" in done.stderr and "'cart.valeu_typo' is undefined" in done.stderr
    assert "not starting" in done.stderr


async def test_a_background_task_that_dies_stops_the_service_with_its_reason(
    kafka_bootstrap: str,
    tmp_path: Path,
    smtp_sink: SmtpSink,
    fake_twilio: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The outbox relay ends on its own: ``Service.run`` raises (so ``recovery run`` exits 1), logging why."""
    settings = operator_settings(monkeypatch, tmp_path, kafka_bootstrap, smtp_sink, fake_twilio, EMAIL_FLOW)
    service = build_service(settings)
    stop, started = asyncio.Event(), asyncio.Event()
    run = asyncio.create_task(service.run(stop, started=started))
    await asyncio.wait_for(started.wait(), 60)
    [relay] = [task for task in asyncio.all_tasks() if task.get_name() == "outbox-relay"]
    relay.cancel()  # what an escaped error looks like from outside: the task is over
    with pytest.raises(TaskDied, match="'outbox-relay' died"):
        await asyncio.wait_for(run, 30)
    assert any("background task died" in record.getMessage() for record in caplog.records)


async def test_a_template_that_fails_at_render_fails_the_message_and_sends_nothing(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render error (here a misspelt name the start-up check would have refused) never sends a half-empty
    email: the message fails with reason template_error."""
    templates = tmp_path / "templates"
    shutil.copytree("templates", templates)
    for locale in ("en", "fr"):
        subject = templates / locale / "cart_reminder.email.subject"
        subject.write_text(subject.read_text(encoding="utf-8").rstrip() + " {{ cart.valeu_typo }}", encoding="utf-8")
    monkeypatch.setenv("RECOVERY_TEMPLATES_DIR", str(templates))
    settings = operator_settings(monkeypatch, tmp_path, kafka_bootstrap, smtp_sink, fake_twilio, EMAIL_FLOW)
    async with running_service(settings) as harness:
        await harness.send(event("cart.updated", "t-1", customer=customer(), cart=cart()))
        await eventually(lambda: step_reason(harness, "t-1"), timeout=30)
        assert await step_reason(harness, "t-1") == ("failed", "template_error")
        failed = [m for m in await harness.read_topic("messages", count=3, timeout=10) if m["type"] == "message.failed"]
    assert [m["reason"] for m in failed] == ["template_error"]
    assert smtp_sink.received == []
