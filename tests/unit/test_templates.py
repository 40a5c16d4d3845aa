"""Rendering the shipped templates: locales, money, escaping, tracked links."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recovery.discounts import new_discount_code
from recovery.sms_text import SmsEncoding
from recovery.template_samples import Sample, load_samples
from recovery.templates import RenderedMessage, TemplateError, Templates, load_templates

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
SAMPLES = load_samples(TEMPLATES_DIR / "samples")
SHIPPED = ("cart_reminder", "cart_offer", "payment_failed", "callback_offer")
TRACKED = "https://t.test/r/"


def fake_track(target: str) -> str:
    """Stands for the dispatcher's signer: the target stays readable for assertions."""
    return TRACKED + target


def spaces(text: str) -> str:
    """Babel writes no-break spaces in French amounts; compare with plain ones."""
    return text.replace("\u202f", " ").replace("\u00a0", " ")


@pytest.fixture(scope="module")
def templates() -> Templates:
    return load_templates(TEMPLATES_DIR)


def sample(name: str) -> Sample:
    return next(s for s in SAMPLES if s.name == name)


def context(**changes: Any) -> dict[str, Any]:
    """The French sample's context with some keys replaced."""
    return {**sample("fr_cart_accents").context, **changes}


def show(
    templates: Templates,
    name: str,
    *,
    channel: str = "email",
    locale: str | None = "fr",
    store: str | None = None,
    ctx: Mapping[str, object] | None = None,
    track: Callable[[str], str] = fake_track,
) -> RenderedMessage:
    """Render a shipped template with the French sample unless told otherwise."""
    return templates.render(
        name,
        channel="email" if channel == "email" else "sms",
        locale=locale,
        store_locale=store,
        context=context() if ctx is None else ctx,
        track=track,
    )


def test_every_shipped_template_exists_for_both_channels_and_locales(templates: Templates) -> None:
    """Four names, two channels, two locales each."""
    found = {(info.name, info.channel): info.locales for info in templates.names()}
    for name in SHIPPED:
        for channel in ("email", "sms"):
            assert found[(name, channel)] == ("en", "fr")


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("channel", ["email", "sms"])
@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("sample_", SAMPLES, ids=lambda s: s.name)
def test_every_shipped_template_renders_for_every_sample(
    templates: Templates, name: str, channel: str, locale: str, sample_: Sample
) -> None:
    """No sample makes a shipped template fail, and the result has the channel's parts."""
    message = templates.render(
        name,
        channel="email" if channel == "email" else "sms",
        locale=locale,
        store_locale=sample_.store_locale,
        context=sample_.context,
        track=fake_track,
    )
    assert message.locale == locale
    assert message.text.strip()
    if channel == "email":
        assert message.subject and "\n" not in message.subject
        assert message.html and message.html.startswith("<!DOCTYPE html>")
        assert message.sms is None
    else:
        assert message.subject is None and message.html is None
        assert message.sms is not None and not message.sms.over_limit


@pytest.mark.parametrize(
    ("shopper", "store", "expected"),
    [
        ("fr-FR", "en", "fr"),
        ("fr_BE", None, "fr"),
        ("en-GB", "fr", "en"),
        ("de-DE", "fr-FR", "fr"),
        (None, "fr", "fr"),
        ("de-DE", "es", "en"),
        (None, None, "en"),
        ("not a locale!", None, "en"),
    ],
)
def test_locale_falls_back_from_shopper_to_store_to_english(
    templates: Templates, shopper: str | None, store: str | None, expected: str
) -> None:
    """The shopper's language wins, then the store's, then English."""
    message = templates.render(
        "cart_reminder",
        channel="email",
        locale=shopper,
        store_locale=store,
        context=context(),
        track=fake_track,
    )
    assert message.locale == expected


def test_french_money_uses_comma_and_trailing_euro(templates: Templates) -> None:
    """189.80 EUR reads ``189,80 €`` in French."""
    message = templates.render(
        "cart_reminder", channel="email", locale="fr", store_locale=None, context=context(), track=fake_track
    )
    assert "Total du panier : 189,80 €" in spaces(message.text)
    assert "189,80 €" in spaces(message.html or "")


def test_english_money_uses_leading_euro_sign(templates: Templates) -> None:
    """189.80 EUR reads ``€189.80`` in English."""
    message = templates.render(
        "cart_reminder", channel="email", locale="en", store_locale=None, context=context(), track=fake_track
    )
    assert "Cart total: €189.80" in message.text


def test_offer_expiry_is_shown_in_the_shoppers_time_zone(templates: Templates) -> None:
    """17:00 UTC is 18:00 in Paris in November."""
    code = new_discount_code(
        "j-1", 15, valid_for=timedelta(days=2), now=datetime(2025, 11, 25, 17, tzinfo=UTC)
    )
    message = templates.render(
        "cart_offer",
        channel="email",
        locale="fr",
        store_locale=None,
        context=context(offer=code),
        track=fake_track,
    )
    assert code.code in message.text
    assert "27 novembre 2025, 18:00" in spaces(message.text)
    assert spaces(message.subject or "") == "-15 % sur votre panier jusqu'au 27 novembre 2025"


def test_html_escapes_a_script_product_name_as_text(templates: Templates) -> None:
    """A ``<script>`` in a product name reaches the HTML as escaped text, the plain text verbatim."""
    message = templates.render(
        "cart_reminder", channel="email", locale="fr", store_locale=None, context=context(), track=fake_track
    )
    assert message.html is not None
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#39;œuvre&#39;)&lt;/script&gt;" in message.html
    assert "<script>alert('œuvre')</script>" in message.text


def test_every_link_in_html_and_text_goes_through_track(templates: Templates) -> None:
    """Restore, product, feedback links are tracked; only the unsubscribe link is the service's own."""
    calls: list[str] = []

    def track(target: str) -> str:
        calls.append(target)
        return fake_track(target)

    ctx = context()
    message = templates.render(
        "cart_reminder", channel="email", locale="fr", store_locale=None, context=ctx, track=track
    )
    assert message.html is not None
    hrefs = re.findall(r'href="([^"]+)"', message.html)
    assert hrefs
    for href in hrefs:
        assert href.startswith(TRACKED) or href == ctx["unsubscribe_url"]
    assert ctx["cart"]["restore_url"] in calls
    assert ctx["cart"]["items"][0]["url"] in calls
    assert any("reason=price" in target for target in calls)
    for url in re.findall(r"https?://\S+", message.text):
        assert url.startswith(TRACKED) or url == ctx["unsubscribe_url"]


def test_printing_a_shop_link_without_track_is_refused(tmp_path: Path) -> None:
    """``{{ cart.restore_url }}`` alone fails with a hint naming the variable and the fix."""
    write_template(tmp_path, "fr/raw.sms.txt", "Votre panier : {{ cart.restore_url }}\n")
    with pytest.raises(TemplateError) as caught:
        render(tmp_path, "raw", "sms")
    assert "cart.restore_url" in str(caught.value)
    assert "| track" in str(caught.value)
    assert "raw.sms.txt:1:" in str(caught.value)


def test_a_hard_coded_shop_link_is_refused_with_its_line(tmp_path: Path) -> None:
    """A literal ``href`` to the shop is found by the link audit and pointed at."""
    write_template(tmp_path, "fr/raw.email.subject", "Sujet\n")
    write_template(tmp_path, "fr/raw.email.txt", "Texte\n")
    write_template(tmp_path, "fr/raw.email.html", '<p>\n<a href="https://shop.example/aide">Aide</a>\n</p>\n')
    with pytest.raises(TemplateError) as caught:
        render(tmp_path, "raw", "email")
    assert "https://shop.example/aide" in str(caught.value)
    assert "raw.email.html:2:" in str(caught.value)


def test_a_literal_link_passed_through_track_is_accepted(tmp_path: Path) -> None:
    """Marketers may link anywhere as long as the link is tracked."""
    write_template(tmp_path, "fr/ok.sms.txt", "Aide : {{ 'https://shop.example/aide' | track }}\n")
    message = render(tmp_path, "ok", "sms")
    assert message.text == "Aide : " + TRACKED + "https://shop.example/aide"


def test_sms_text_is_made_gsm_friendly_so_french_money_stays_gsm7(templates: Templates) -> None:
    """Babel's no-break spaces would force UCS-2; the SMS gets plain spaces instead."""
    message = templates.render(
        "cart_reminder", channel="sms", locale="fr", store_locale=None, context=context(), track=fake_track
    )
    assert "189,80 €" in message.text
    assert message.sms is not None and message.sms.encoding is SmsEncoding.GSM_7


@pytest.mark.parametrize(
    ("reason", "expected_fr", "expected_en"),
    [
        ("authentication_failed", "3-D Secure", "3-D Secure"),
        ("card_declined", "PayPal", "PayPal"),
        ("insufficient_funds", "plusieurs fois", "instalments"),
        ("processing_error", "été débité", "othing was charged"),
    ],
)
def test_payment_failed_wording_follows_the_reason(
    templates: Templates, reason: str, expected_fr: str, expected_en: str
) -> None:
    """Each failure reason has its own explanation in email and SMS, in both languages."""
    ctx = context(payment={"reason": reason, "method": "card"})
    for locale, expected in (("fr", expected_fr), ("en", expected_en)):
        for channel in ("email", "sms"):
            message = templates.render(
                "payment_failed",
                channel="email" if channel == "email" else "sms",
                locale=locale,
                store_locale=None,
                context=ctx,
                track=fake_track,
            )
            assert expected in message.text, (locale, channel)


def test_insufficient_funds_never_mentions_funds(templates: Templates) -> None:
    """Tact: the shopper is not told their account is short."""
    ctx = context(payment={"reason": "insufficient_funds"})
    for locale in ("fr", "en"):
        message = templates.render(
            "payment_failed", channel="email", locale=locale, store_locale=None, context=ctx, track=fake_track
        )
        lowered = (message.text + (message.subject or "")).lower()
        assert "fund" not in lowered and "insuffisant" not in lowered and "provision" not in lowered


@pytest.mark.parametrize(("locale", "keyword"), [("fr", "RAPPEL"), ("en", "CALL")])
def test_callback_sms_names_the_reply_keyword(templates: Templates, locale: str, keyword: str) -> None:
    """The callback SMS tells the shopper which word to reply."""
    message = templates.render(
        "callback_offer", channel="sms", locale=locale, store_locale=None, context=context(), track=fake_track
    )
    assert keyword in message.text


def test_email_footer_has_seller_address_and_withdrawal_right(templates: Templates) -> None:
    """The legal footer names the seller's address and the 14-day right of withdrawal."""
    message = templates.render(
        "cart_offer", channel="email", locale="fr", store_locale=None, context=context(), track=fake_track
    )
    for part in (message.text, message.html or ""):
        assert "12 rue des Lilas, 69003 Lyon, France" in part
        assert "14 jours" in part


def test_subject_is_one_line_even_with_a_newline_in_the_first_name(templates: Templates) -> None:
    """A first name with CR/LF cannot inject an email header through the subject."""
    ctx = context(customer={"first_name": "Zoé\r\nBcc: evil@example.com", "locale": "fr"})
    message = templates.render(
        "cart_reminder", channel="email", locale="fr", store_locale=None, context=ctx, track=fake_track
    )
    assert message.subject is not None
    assert "\n" not in message.subject and "\r" not in message.subject


def test_unknown_template_suggests_the_closest_name(templates: Templates) -> None:
    """A misspelt template name says which one was probably meant."""
    with pytest.raises(TemplateError, match="did you mean 'cart_offer'"):
        templates.render(
            "cart_ofer", channel="email", locale="fr", store_locale=None, context=context(), track=fake_track
        )


def test_misspelt_variable_names_file_line_and_variable(tmp_path: Path) -> None:
    """``cart.totl`` fails with the file, the line and the full variable path."""
    write_template(tmp_path, "fr/typo.sms.txt", "Bonjour\nTotal : {{ cart.totl | money }}\n")
    with pytest.raises(TemplateError) as caught:
        render(tmp_path, "typo", "sms")
    assert str(caught.value) == (
        f"{tmp_path / 'fr' / 'typo.sms.txt'}:2: template 'typo' locale 'fr': 'cart.totl' is undefined"
    )
    assert caught.value.line == 2


def write_template(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def render(root: Path, name: str, channel: str, ctx: Mapping[str, object] | None = None) -> Any:
    return load_templates(root).render(
        name,
        channel="email" if channel == "email" else "sms",
        locale="fr",
        store_locale=None,
        context=context() if ctx is None else ctx,
        track=fake_track,
    )
