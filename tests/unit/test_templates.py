"""Rendering the shipped templates: locales, money, escaping, tracked links."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recovery.render.samples import Sample, load_samples
from recovery.render.sms_text import SmsEncoding
from recovery.render.templates import RenderedMessage, TemplateError, Templates, load_templates
from recovery.steps.discounts import new_discount_code

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
    assert show(templates, "cart_reminder", locale=shopper, store=store).locale == expected


def test_french_money_uses_comma_and_trailing_euro(templates: Templates) -> None:
    """189.80 EUR reads ``189,80 €`` in French."""
    message = show(templates, "cart_reminder")
    assert "Total du panier : 189,80 €" in spaces(message.text)
    assert "189,80 €" in spaces(message.html or "")


def test_english_money_uses_leading_euro_sign(templates: Templates) -> None:
    """189.80 EUR reads ``€189.80`` in English."""
    assert "Cart total: €189.80" in show(templates, "cart_reminder", locale="en").text


def test_money_follows_the_shoppers_regional_variant(templates: Templates) -> None:
    """A US shopper sees dollars the US way in the English template."""
    message = show(templates, "cart_reminder", locale="en-US", ctx=sample("en_payment_declined").context)
    assert "Cart total: $342.50" in message.text


def test_offer_expiry_is_shown_in_the_shoppers_time_zone(templates: Templates) -> None:
    """17:00 UTC is 18:00 in Paris in November."""
    now = datetime(2025, 11, 25, 17, tzinfo=UTC)
    code = new_discount_code("j-1", 15, valid_for=timedelta(days=2), now=now)
    message = show(templates, "cart_offer", ctx=context(offer=code))
    assert code.code in message.text
    assert "27 novembre 2025, 18:00" in spaces(message.text)
    assert spaces(message.subject or "") == "-15 % sur votre panier jusqu'au 27 novembre 2025"


def test_shipping_cost_is_shown_up_front_in_the_offer(templates: Templates) -> None:
    """The offer states the shipping cost before the shopper clicks."""
    assert "Frais de livraison : 4,90 €" in spaces(show(templates, "cart_offer").text)
    english = sample("en_cart").context
    assert "Shipping: free" in show(templates, "cart_offer", channel="sms", locale="en", ctx=english).text


def test_html_escapes_a_script_product_name_as_text(templates: Templates) -> None:
    """A ``<script>`` in a product name reaches the HTML as escaped text, the plain text verbatim."""
    message = show(templates, "cart_reminder")
    assert message.html is not None
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#39;œuvre&#39;)&lt;/script&gt;" in message.html
    assert "<script>alert('œuvre')</script>" in message.text


def test_every_link_in_html_and_text_goes_through_track(templates: Templates) -> None:
    """Restore and product links are tracked; the unsubscribe and the six feedback links are the service's own;
    the store's terms of sale are a legal mention, printed as they are."""
    calls: list[str] = []

    def track(target: str) -> str:
        calls.append(target)
        return fake_track(target)

    ctx = context()
    message = show(templates, "cart_reminder", ctx=ctx, track=track)
    assert message.html is not None
    hrefs = re.findall(r'href="([^"]+)"', message.html)
    assert hrefs
    feedback = "https://preview.invalid/f/"  # the service's own "why did you leave?" links (unsigned in previews)
    own = (ctx["unsubscribe_url"], ctx["store"]["terms_url"])
    for href in hrefs:
        assert href.startswith((TRACKED, feedback)) or href in own
    for url in re.findall(r"https?://\S+", message.text):
        assert url.startswith((TRACKED, feedback)) or url in own
    assert ctx["cart"]["restore_url"] in calls
    assert ctx["cart"]["items"][0]["url"] in calls
    assert len([href for href in hrefs if href.startswith(feedback)]) == 6


def test_images_are_loaded_directly_not_tracked(templates: Templates) -> None:
    """An image is not a click: its URL appears as is in ``src``."""
    message = show(templates, "cart_reminder")
    assert 'src="https://cdn.example.fr/img/theiere-kyoto.jpg"' in (message.html or "")


def test_sms_text_is_made_gsm_friendly_so_french_money_stays_gsm7(templates: Templates) -> None:
    """Babel's no-break spaces would force UCS-2; the SMS gets plain spaces instead."""
    message = show(templates, "cart_reminder", channel="sms")
    assert "189,80 €" in message.text
    assert message.sms is not None and message.sms.encoding is SmsEncoding.GSM_7


def test_sms_first_name_is_spelt_in_gsm_letters(templates: Templates) -> None:
    """``Loïc`` becomes ``Loic`` in the SMS rather than tripling its cost in UCS-2."""
    message = show(templates, "cart_reminder", channel="sms", ctx=sample("fr_payment_insufficient_funds").context)
    assert "Loic," in message.text
    assert message.sms is not None and message.sms.encoding is SmsEncoding.GSM_7


@pytest.mark.parametrize(
    ("reason", "expected_fr", "expected_en"),
    [
        ("authentication_failed", "3-D Secure", "3-D Secure"),
        ("card_declined", "une autre carte", "another card"),
        ("insufficient_funds", "plusieurs fois", "instalments"),
        ("processing_error", "été débité", "othing was charged"),
    ],
)
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_payment_failed_wording_follows_the_reason(
    templates: Templates, channel: str, reason: str, expected_fr: str, expected_en: str
) -> None:
    """Each failure reason has its own explanation in email and SMS, in both languages."""
    ctx = context(payment={"reason": reason, "method": "card"})
    assert expected_fr in show(templates, "payment_failed", channel=channel, ctx=ctx).text
    assert expected_en in show(templates, "payment_failed", channel=channel, locale="en", ctx=ctx).text


@pytest.mark.parametrize(("locale", "kept_cart"), [("fr", "retrouver votre panier"), ("en", "pick up your cart")])
def test_insufficient_funds_never_mentions_funds(templates: Templates, locale: str, kept_cart: str) -> None:
    """Tact: the shopper is not told their account is short, but is told their cart waits for them."""
    ctx = context(payment={"reason": "insufficient_funds"})
    message = show(templates, "payment_failed", locale=locale, ctx=ctx)
    lowered = (message.text + (message.subject or "")).lower()
    assert kept_cart in lowered, "the insufficient-funds explanation is in the message (an empty one passes nothing)"
    assert "fund" not in lowered and "insuffisant" not in lowered and "provision" not in lowered


@pytest.mark.parametrize(("locale", "keyword"), [("fr", "Répondez RAPPEL"), ("en", "Reply CALL")])
def test_callback_sms_names_the_reply_keyword(templates: Templates, locale: str, keyword: str) -> None:
    """The callback SMS tells the shopper which word to reply."""
    assert keyword in show(templates, "callback_offer", channel="sms", locale=locale).text


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_feedback_question_offers_one_click_answers(templates: Templates, locale: str) -> None:
    """The reminder asks why the shopper left: one signed /f/ link per answer the contract names."""
    signed: list[str] = []

    def feedback(answer: str) -> str:
        signed.append(answer)
        return f"https://relance.example.fr/f/signed-{answer}"

    message = templates.render(
        "cart_reminder", channel="email", locale=locale, store_locale=None, context=context(),
        track=fake_track, feedback=feedback,
    )  # fmt: skip
    answers = ("shipping_cost", "account_required", "delivery_time", "payment_issue", "comparing", "other")
    for answer in answers:
        assert f'href="https://relance.example.fr/f/signed-{answer}"' in (message.html or "")
        assert f"https://relance.example.fr/f/signed-{answer}" in message.text
    assert sorted(set(signed)) == sorted(answers)


def test_feedback_link_with_an_unknown_answer_is_a_template_error(tmp_path: Path) -> None:
    """A marketer's typo in an answer name is refused at its line."""
    write_template(tmp_path, "fr/typo.sms.txt", "Bonjour\n{{ 'shiping' | feedback_link }}\n")
    with pytest.raises(TemplateError, match="unknown feedback answer 'shiping'") as caught:
        render(tmp_path, "typo", "sms")
    assert caught.value.line == 2


def test_email_footer_has_the_store_address_and_terms_link(templates: Templates) -> None:
    """The legal footer names the shop and its address, and links its terms of sale (withdrawal rights there)."""
    message = show(templates, "cart_offer")
    for part in (message.text, message.html or ""):
        assert "Maison Dupont" in part
        assert "12 rue des Lilas, 69003 Lyon, France" in part
        assert "https://boutique.example.fr/cgv" in part
        assert "14 jours" not in part
    assert "12 rue des Lilas, 69003 Lyon, France\n" in message.text, "the address ends its own footer line"


def test_subject_is_one_line_even_with_a_newline_in_the_first_name(templates: Templates) -> None:
    """A first name with CR/LF cannot inject an email header through the subject."""
    ctx = context(customer={"first_name": "Zoé\r\nBcc: evil@example.com", "locale": "fr"})
    subject = show(templates, "cart_reminder", ctx=ctx).subject
    assert subject is not None
    assert "\n" not in subject and "\r" not in subject


def test_an_older_context_with_a_seller_record_still_names_the_shop(templates: Templates) -> None:
    """A saved context with ``store`` as an id and ``seller`` as the name and address still names the shop."""
    ctx = context(store="maison-dupont", seller={"name": "Maison Dupont", "address": "1 quai Est, Lyon"})
    text = show(templates, "cart_reminder", ctx=ctx).text
    assert "Maison Dupont, 1 quai Est, Lyon" in text


def test_unknown_template_suggests_the_closest_name(templates: Templates) -> None:
    """A misspelt template name says which one was probably meant."""
    with pytest.raises(TemplateError, match="did you mean 'cart_offer'"):
        show(templates, "cart_ofer")


def test_a_bad_amount_in_the_context_is_a_template_error(templates: Templates) -> None:
    """Event data that is not an amount fails as a TemplateError, not a crash."""
    ctx = context(cart={**context()["cart"], "value": "beaucoup"})
    with pytest.raises(TemplateError, match=r"cart\.value"):
        show(templates, "cart_reminder", ctx=ctx)


def test_misspelt_variable_names_file_line_and_variable(tmp_path: Path) -> None:
    """``cart.totl`` fails with the file, the line and the full variable path."""
    write_template(tmp_path, "fr/typo.sms.txt", "Bonjour\nTotal : {{ cart.totl | money }}\n")
    with pytest.raises(TemplateError) as caught:
        render(tmp_path, "typo", "sms")
    expected = f"{tmp_path / 'fr' / 'typo.sms.txt'}:2: template 'typo' locale 'fr': 'cart.totl' is undefined"
    assert str(caught.value) == expected
    assert caught.value.line == 2


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
    assert render(tmp_path, "ok", "sms").text == "Aide : " + TRACKED + "https://shop.example/aide"


def test_tracking_a_non_web_link_is_refused(tmp_path: Path) -> None:
    """``javascript:`` and friends are not links a message may carry."""
    write_template(tmp_path, "fr/js.sms.txt", "{{ 'javascript:alert(1)' | track }}\n")
    with pytest.raises(TemplateError, match="only http"):
        render(tmp_path, "js", "sms")


def test_layouts_resolve_inside_the_templates_locale(tmp_path: Path) -> None:
    """``{% extends "_base.sms.txt" %}`` in fr/ means fr/_base.sms.txt, not en/."""
    write_template(tmp_path, "fr/_base.sms.txt", "FR {% block body %}{% endblock %}\n")
    write_template(tmp_path, "en/_base.sms.txt", "EN {% block body %}{% endblock %}\n")
    write_template(tmp_path, "fr/child.sms.txt", '{% extends "_base.sms.txt" %}{% block body %}ok{% endblock %}\n')
    assert render(tmp_path, "child", "sms").text == "FR ok"


def write_template(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def render(root: Path, name: str, channel: str) -> RenderedMessage:
    return show(load_templates(root), name, channel=channel)


def test_a_store_without_a_name_is_named_after_its_id_in_previews(templates: Templates) -> None:
    """Only a preview or dry run can lack a name (check refuses to send so): the footer still names something."""
    ctx = context(store={"id": "maison-dupont", "address": "1 quai Est, Lyon"})
    text = show(templates, "cart_reminder", ctx=ctx).text
    assert "maison-dupont, 1 quai Est, Lyon" in text


def test_an_unreadable_offer_expiry_names_the_field(templates: Templates) -> None:
    """``offer.expires_at`` that is not ISO 8601 fails as a TemplateError naming it."""
    ctx = context(offer={"code": "CART-X", "percent": 10, "expires_at": "demain"})
    with pytest.raises(TemplateError, match=r"offer\.expires_at"):
        show(templates, "cart_offer", ctx=ctx)
