"""The shipped copy speaks in the shop's name: SMS in two segments, only the shop's payment methods, French
typography, "reply to this email" only when someone reads replies (contract stores.md "Rules")."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recovery.desk.agent_lines import AgentLines
from recovery.render.short_links import length_probe
from recovery.render.sms_text import SmsEncoding
from recovery.render.templates import RenderedMessage, Templates, load_templates

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
SHIPPED = ("cart_reminder", "cart_offer", "payment_failed", "callback_offer")
REASONS = (None, "authentication_failed", "card_declined", "insufficient_funds", "expired_card", "processing_error")
FIRST_NAME = "Marie-Amélie-Françoise Dupontel"  # 30 characters
SHOP_NAME = "Maison Dupont et Fils de Paris"  # 30 characters
PUBLIC_URL = "https://relance.maison-dupont.fr"  # the service's own host: short links are this long plus /s/ + 10


@pytest.fixture(scope="module")
def templates() -> Templates:
    return load_templates(TEMPLATES_DIR)


def context(
    *, reason: str | None = None, methods: tuple[str, ...] = ("card", "paypal", "installments"), **store: Any
) -> dict[str, Any]:
    """A realistic French cart with the longest names the contract promises to fit."""
    return {
        "store": {
            "id": "fr",
            "name": SHOP_NAME,
            "address": "12 rue des Lilas, 75011 Paris, France",
            "terms_url": "https://maison-dupont.fr/cgv",
            "payment_methods": list(methods),
            "stop_text": "STOP au 36111",
            **store,
        },
        "customer": {"first_name": FIRST_NAME, "locale": "fr-FR", "timezone": "Europe/Paris"},
        "cart": {
            "currency": "EUR",
            "value": 1289.9,
            "shipping_cost": 4.9,
            "restore_url": "https://maison-dupont.fr/panier/restaurer/9f2c41aa?utm_source=relance",
            "items": [{"sku": "SAC-01", "name": "Sac en cuir", "quantity": 1, "unit_price": 1285.0}],
        },
        "payment": {"reason": reason, "method": "card"} if reason else None,
        "offer": {"code": "RELANCE-7KQ2M9", "percent": 10, "expires_at": datetime(2026, 12, 3, 18, tzinfo=UTC)},
        "callback_url": PUBLIC_URL + "/c/" + "x" * 60,
        "unsubscribe_url": PUBLIC_URL + "/u/" + "y" * 80,
    }


def render(
    templates: Templates, name: str, channel: str, locale: str, ctx: dict[str, Any], *, short: bool = False
) -> RenderedMessage:
    return templates.render(
        name,
        channel="sms" if channel == "sms" else "email",
        locale=locale,
        store_locale=None,
        context=ctx,
        track=length_probe(PUBLIC_URL) if short else (lambda target: "https://t.test/r/" + target),
    )


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_sms_fits_two_gsm7_segments_with_long_names(
    templates: Templates, name: str, reason: str | None, locale: str
) -> None:
    """30-character first name and shop name, real short links: two GSM-7 segments (306 characters) at most,
    naming the shop and ending with its opt-out text."""
    for offer in (True, False):
        ctx = context(reason=reason)
        if not offer:
            ctx["offer"], ctx["callback_url"] = None, None
        message = render(templates, name, "sms", locale, ctx, short=True)
        assert message.sms is not None
        assert message.sms.encoding is SmsEncoding.GSM_7, message.text
        assert message.sms.segments <= 2, (message.sms.characters, message.text)
        assert message.text.startswith(SHOP_NAME)
        assert message.text.endswith("STOP au 36111")


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_an_sms_without_stop_text_ends_with_the_reply_stop_line(templates: Templates, locale: str) -> None:
    """A numbered sender can receive STOP: without stop_text the SMS says to reply STOP."""
    message = render(templates, "cart_reminder", "sms", locale, context(stop_text=None), short=True)
    assert message.text.endswith("répondez STOP" if locale == "fr" else "Reply STOP to opt out")


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("channel", ["email", "sms"])
@pytest.mark.parametrize("reason", REASONS)
def test_a_store_listing_only_card_is_never_suggested_paypal_or_installments(
    templates: Templates, channel: str, reason: str | None, locale: str
) -> None:
    """payment_methods [card]: no PayPal, no paying in instalments, in any payment-failure message."""
    message = render(templates, "payment_failed", channel, locale, context(reason=reason, methods=("card",)))
    text = (message.text + (message.html or "") + (message.subject or "")).lower()
    assert "paypal" not in text and "plusieurs fois" not in text and "instalment" not in text


@pytest.mark.parametrize(("locale", "words"), [("fr", "Payez avec"), ("en", "Pay with")])
def test_a_store_listing_no_method_gets_no_payment_suggestion(templates: Templates, locale: str, words: str) -> None:
    """payment_methods []: the declined-card SMS suggests nothing, it links the cart."""
    message = render(templates, "payment_failed", "sms", locale, context(reason="card_declined", methods=()))
    assert words not in message.text and "paypal" not in message.text.lower()


def test_installments_are_named_paiement_en_plusieurs_fois(templates: Templates) -> None:
    """A store offering installments suggests "le paiement en plusieurs fois" after a declined card."""
    message = render(templates, "payment_failed", "email", "fr", context(reason="card_declined"))
    assert "une autre carte, PayPal ou le paiement en plusieurs fois" in message.text


@pytest.mark.parametrize(("reason", "locale"), [("card_declined", "fr"), ("insufficient_funds", "en")])
def test_the_agents_script_suggests_only_the_stores_methods(tmp_path: Path, reason: str, locale: str) -> None:
    """The agent's line follows payment_methods too: [card] → no PayPal, no instalments."""
    lines = AgentLines(TEMPLATES_DIR)
    task = {"payment": {"reason": reason}, "customer": {"name": "Zoé"}, "store": {"payment_methods": ["card"]}}
    line = (lines.line(locale, task) or "").lower()
    assert line and "paypal" not in line and "plusieurs fois" not in line and "instalment" not in line
    full = {**task, "store": {"payment_methods": ["card", "paypal", "installments"]}}
    assert "paypal" in (lines.line(locale, full) or "").lower() or reason == "insufficient_funds"


@pytest.mark.parametrize(("locale", "invite"), [("fr", "répondez à cet e-mail"), ("en", "reply to this email")])
@pytest.mark.parametrize("name", ["payment_failed", "callback_offer"])
def test_reply_to_this_email_only_when_the_store_reads_replies(
    templates: Templates, name: str, locale: str, invite: str
) -> None:
    """Without email.reply_to no message invites a reply; with it, it does."""
    without = context(reason="card_declined")
    without["callback_url"] = None
    with_reply = context(reason="card_declined", reply_to="service@maison-dupont.fr")
    with_reply["callback_url"] = None
    assert invite not in render(templates, name, "email", locale, without).text.lower()
    assert invite in render(templates, name, "email", locale, with_reply).text.lower()


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("name", SHIPPED)
def test_french_copy_has_no_break_spaces_before_double_punctuation(
    templates: Templates, name: str, reason: str | None
) -> None:
    """French typography: U+202F or U+00A0 before ?, :, !, % and € in the subject, text and HTML."""
    message = render(templates, name, "email", "fr", context(reason=reason))
    html_text = re.sub(r"<[^>]+>", "", message.html or "")
    for part in (message.subject or "", message.text, html_text):
        without_urls = re.sub(r"https?://\S+", "", part)
        assert not re.search(r"[^\S\u00a0\u202f][?:!%€]", without_urls), without_urls


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("name", SHIPPED)
def test_no_promise_about_stock_and_inclusive_wording(templates: Templates, name: str, locale: str) -> None:
    """Nothing the service cannot know ("still available", "kept for you"), no gendered "seul"."""
    message = render(templates, name, "email", locale, context())
    text = (message.text + (message.html or "")).lower()
    for promise in ("toujours disponible", "gardés pour vous", "still available", "kept them for you", " seul "):
        assert promise not in text


def test_missing_for_free_shipping_is_what_the_cart_still_lacks(templates: Templates) -> None:
    """A 60 € threshold and a 45 € cart: "Plus que 15,00 €"; a cart above it: nothing said."""
    ctx = context(free_shipping_threshold=60)
    ctx["cart"] = {**ctx["cart"], "value": 45}
    text = render(templates, "cart_reminder", "email", "fr", ctx).text
    assert "Plus que 15,00\u00a0€" in text.replace("\u202f", "\u00a0")
    ctx["cart"] = {**ctx["cart"], "value": 80}
    assert "Plus que" not in render(templates, "cart_reminder", "email", "fr", ctx).text


def test_expiry_in_sms_reads_in_two_segments_even_next_month() -> None:
    """Sanity: the probe link has the real short-link length."""
    assert len(length_probe(PUBLIC_URL)("x")) == len(PUBLIC_URL) + len("/s/") + 10
    assert timedelta(days=1)


def test_the_studio_preview_counts_segments_with_the_real_short_link_length() -> None:
    """The studio's SMS counter measures {public_url}/s/ + 10 characters, not a short sample link."""
    from recovery.render.preview import render_preview

    source = (TEMPLATES_DIR / "fr" / "cart_reminder.sms.txt").read_text(encoding="utf-8")
    path = "fr/cart_reminder.sms.txt"
    answer = render_preview(TEMPLATES_DIR, {}, path=path, source=source, context=context(), public_url=PUBLIC_URL)
    [link] = re.findall(r"https?://\S+", answer["text"])
    assert link.startswith(PUBLIC_URL + "/s/") and len(link) == len(PUBLIC_URL) + len("/s/") + 10
    assert answer["sms"]["characters"] == len(answer["text"])  # counted on the text with the real link
    assert answer["sms"]["segments"] <= 2
