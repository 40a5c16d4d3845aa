"""Every message speaks in its shop's name (contract stores.md), from outside: events on the real broker, the
service configured by RECOVERY_* variables only, email at the SMTP server, SMS at the Twilio-shaped server."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from recovery.render.sms_text import SmsEncoding, describe_sms
from recovery.settings import Settings, load_settings
from recovery.store.schema import clicks
from tests.fakes.fixtures import fake_twilio, smtp_sink
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_server import FakeTwilio
from tests.harness import cart, customer, event, eventually, running_service
from tests.integration.test_day_one import local_url, operator_settings, step_reason

__all__ = ["fake_twilio", "smtp_sink"]
pytestmark = [pytest.mark.kafka]

BOTH_FLOW = """
flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    reentry_after: 0s
    steps:
      - {name: reminder, after: 0s, channel: email, template: cart_reminder}
      - {name: sms_reminder, after: 0s, channel: sms, template: cart_reminder}
"""
SMS_PAYMENT_FLOW = """
flows:
  - name: payment_failed
    trigger: payment.failed
    reentry_after: 0s
    steps:
      - {name: retry_payment, after: 0s, channel: sms, template: payment_failed}
      - {name: retry_payment_email, after: 0s, channel: email, template: payment_failed}
"""
SHOP = {
    "STORES__DEFAULT__NAME": "Maison Dupont",
    "STORES__DEFAULT__ADDRESS": "12 rue des Lilas, 75011 Paris, France",
    "STORES__DEFAULT__LOCALE": "fr-FR",
    "STORES__DEFAULT__TIMEZONE": "Europe/Paris",
    "STORES__DEFAULT__EMAIL__SENDER": "Ancien nom <bonjour@maison-dupont.fr>",
    "STORES__DEFAULT__EMAIL__REPLY_TO": "service@maison-dupont.fr",
    "STORES__DEFAULT__SMS__SENDER": "DUPONT",
    "STORES__DEFAULT__SMS__STOP_TEXT": "STOP au 36111",
    "STORES__DEFAULT__TERMS_URL": "https://maison-dupont.fr/cgv",
    "STORES__DEFAULT__PAYMENT_METHODS": '["card", "paypal", "installments"]',
    "STORES__BE__NAME": "Maison Dupont Belgique",
    "STORES__BE__PAYMENT_METHODS": '["card"]',
}


def shop_settings(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    bootstrap: str,
    smtp: SmtpSink,
    twilio: FakeTwilio,
    flows: str,
    **extra: str,
) -> Settings:
    """An operator's day-one variables plus a shop front, all by environment; SMS allowed all day every day."""
    for name, value in {**SHOP, **extra}.items():
        monkeypatch.setenv("RECOVERY_" + name, value)
    monkeypatch.setenv("RECOVERY_GUARDS__QUIET_HOURS__START", "00:00")
    monkeypatch.setenv("RECOVERY_GUARDS__QUIET_HOURS__END", "23:59:59")
    monkeypatch.setenv("RECOVERY_GUARDS__QUIET_HOURS__WEEKDAYS", '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]')
    operator_settings(monkeypatch, tmp_path, bootstrap, smtp, twilio, flows)
    # operator_settings sets quiet hours off; the shop's calendar needs them on (set again after it).
    monkeypatch.setenv("RECOVERY_GUARDS__QUIET_HOURS__CHANNELS", '["sms", "callback"]')
    return load_settings(None)


def french_shopper(**changes: object) -> dict[str, object]:
    """A French shopper who consented to SMS, with some fields changed."""
    return {**customer(sms=True), **changes}


async def test_the_email_speaks_in_the_shops_name_with_its_address_terms_and_reply_to(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From = shop name + sender address, Reply-To set, the footer has the address and the terms link; the
    store id is nowhere; a shopper without a locale in a French store reads French."""
    settings = shop_settings(monkeypatch, tmp_path, kafka_bootstrap, smtp_sink, fake_twilio, BOTH_FLOW)
    shopper = french_shopper(locale=None)
    async with running_service(settings) as harness:
        await harness.send(event("cart.updated", "s-1", store="shop-fr-01", customer=shopper, cart=cart()))
        await eventually(lambda: len(smtp_sink.received) >= 1, timeout=30)
    mail = smtp_sink.received[0].message
    assert mail["From"] == "Maison Dupont <bonjour@maison-dupont.fr>"
    assert mail["Reply-To"] == "service@maison-dupont.fr"
    assert smtp_sink.received[0].mail_from == "bonjour@maison-dupont.fr"
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "12 rue des Lilas, 75011 Paris, France" in text
    assert "https://maison-dupont.fr/cgv" in text
    assert "Bonjour Claire" in text and "Content-Language" in mail and mail["Content-Language"] == "fr-FR"
    subject = str(mail["Subject"])
    assert "Maison Dupont" in subject
    html = mail.get_body(("html",))
    assert html is not None
    assert "shop-fr-01" not in subject + text + html.get_content(), "the store id is never shown"
    assert "14 jours" not in text


async def test_an_sms_fits_two_segments_and_its_short_link_redirects_and_records_a_click(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SMS comes from the shop's alphanumeric sender, names the shop, ends with its stop text, is at most
    306 GSM-7 characters; its /s/ link answers 302 to the cart and the click is recorded."""
    settings = shop_settings(monkeypatch, tmp_path, kafka_bootstrap, smtp_sink, fake_twilio, BOTH_FLOW)
    long_name = french_shopper(first_name="Marie-Amélie-Françoise Dupontel")
    async with running_service(settings) as harness, httpx.AsyncClient() as http:
        await harness.send(event("cart.updated", "s-2", store="fr", customer=long_name, cart=cart()))
        await eventually(lambda: len(fake_twilio.messages) >= 1, timeout=30)
        sms = fake_twilio.messages[0]
        info = describe_sms(sms.body)
        assert sms.from_ == "DUPONT"
        assert info.encoding is SmsEncoding.GSM_7 and info.characters <= 306 and info.segments <= 2, sms.body
        assert sms.body.startswith("Maison Dupont") and sms.body.endswith("STOP au 36111")
        [link] = re.findall(r"https?://\S+/s/[A-Za-z0-9]{10}", sms.body)
        answer = await http.get(local_url(harness, link), headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
        assert answer.status_code == 302
        assert answer.headers["location"] == "https://shop.example.com/cart/restore/1"
        guess = link[:-1] + ("Y" if link.endswith("Z") else "Z")  # one character off (1 code in 62 ends in Z)
        assert (await http.get(local_url(harness, guess))).status_code == 404  # a guess finds nothing
        assert harness.service.engine is not None
        async with harness.service.engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(clicks).where(clicks.c.cart_id == "s-2")) == 1


async def test_a_closed_day_holds_the_sms_while_the_email_goes(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Today (the shopper's date) is one of the shop's closed_days: the email is sent, the SMS is deferred to
    tomorrow, not sent."""
    today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris")).date()
    settings = shop_settings(
        monkeypatch,
        tmp_path,
        kafka_bootstrap,
        smtp_sink,
        fake_twilio,
        BOTH_FLOW,
        STORES__DEFAULT__CLOSED_DAYS=f'["{today.isoformat()}"]',
    )
    async with running_service(settings) as harness:
        await harness.send(event("cart.updated", "s-3", store="fr", customer=french_shopper(), cart=cart()))
        await eventually(lambda: len(smtp_sink.received) >= 1, timeout=30)
        assert harness.service.engine is not None

        async def deferred() -> bool:
            from recovery.store.schema import steps

            assert harness.service.engine is not None
            async with harness.service.engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(steps.c.status, steps.c.reason, steps.c.due_at).where(
                            steps.c.cart_id == "s-3", steps.c.name == "sms_reminder"
                        )
                    )
                ).first()
            return row is not None and row.reason == "quiet_hours_deferred" and row.status == "pending"

        await eventually(deferred, timeout=30)
        assert fake_twilio.messages == []


async def test_a_store_listing_only_card_never_sees_paypal_suggested(
    kafka_bootstrap: str, tmp_path: Path, smtp_sink: SmtpSink, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A declined card in the Belgian store (payment_methods [card]): neither SMS nor email mentions PayPal or
    paying in instalments; the same failure in the default store suggests them."""
    settings = shop_settings(monkeypatch, tmp_path, kafka_bootstrap, smtp_sink, fake_twilio, SMS_PAYMENT_FLOW)
    declined = {"reason": "card_declined", "method": "card"}
    async with running_service(settings) as harness:
        await harness.send(
            event("payment.failed", "s-4", store="be", customer=french_shopper(), cart=cart(), payment=declined)
        )
        await eventually(lambda: len(fake_twilio.messages) >= 1 and len(smtp_sink.received) >= 1, timeout=30)
        belgian = fake_twilio.messages[0].body + smtp_sink.received[0].message.as_string()
        assert "Maison Dupont Belgique" in fake_twilio.messages[0].body
        assert "paypal" not in belgian.lower() and "plusieurs fois" not in belgian
        await harness.send(
            event("payment.failed", "s-5", store="fr", customer=customer(2, sms=True), cart=cart(), payment=declined)
        )
        await eventually(lambda: len(fake_twilio.messages) >= 2, timeout=30)
        assert "PayPal" in fake_twilio.messages[1].body
        assert await step_reason(harness, "s-4") is not None
