"""Store identity (contract stores.md): the fallback order of every key, env overrides, and what check refuses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from recovery.errors import ConfigError
from recovery.rules import parse_flows
from recovery.settings import Settings, load_settings
from recovery.states import ChannelName
from recovery.stores import STORE_KEYS, StoreDirectory, resolve_store, resolve_value, store_problems

DEFAULT: dict[str, Any] = {
    "name": "Maison Dupont",
    "address": "12 rue des Lilas, 75011 Paris, France",
    "locale": "fr-FR",
    "timezone": "Europe/Paris",
    "country": "FR",
    "closed_days": ["2026-12-24"],
    "email": {"sender": "Maison Dupont <bonjour@maison-dupont.fr>", "reply_to": "service@maison-dupont.fr"},
    "sms": {"sender": "DUPONT", "stop_text": "STOP au 36111"},
    "terms_url": "https://maison-dupont.fr/cgv",
    "support_phone": "+33 1 23 45 67 89",
    "payment_methods": ["card", "paypal", "installments"],
    "free_shipping_threshold": 60,
}
BE: dict[str, Any] = {
    "name": "Maison Dupont Belgique",
    "address": "1 rue Haute, 1000 Bruxelles, Belgique",
    "locale": "fr-BE",
    "timezone": "Europe/Brussels",
    "country": "BE",
    "closed_days": ["2026-11-15"],
    "email": {"sender": "be@maison-dupont.be", "reply_to": "service@maison-dupont.be"},
    "sms": {"sender": "+32470000000", "stop_text": "STOP au 9999"},
    "terms_url": "https://maison-dupont.be/cgv",
    "support_phone": "+32 2 000 00 00",
    "payment_methods": ["card"],
    "free_shipping_threshold": 80,
}
CHANNELS = {"email": {"sender": "channel@shop.example"}, "sms": {"sender": "+33700000000"}}


def _nested(values: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        values = values.get(part) if isinstance(values, dict) else None  # type: ignore[assignment]
    return values


def _only(values: dict[str, Any], key: str) -> dict[str, Any]:
    """A store config that sets only ``key`` (nested keys keep their section)."""
    head, _, tail = key.partition(".")
    return {head: {tail: _nested(values, key)}} if tail else {head: values[head]}


def _expected(raw: Any, key: str) -> Any:
    if key == "closed_days":
        return [date.fromisoformat(day) for day in raw]
    if key == "free_shipping_threshold":
        return Decimal(raw)
    return raw


@pytest.mark.parametrize("key", STORE_KEYS)
@pytest.mark.parametrize(
    ("listed", "default", "source"),
    [
        (True, True, "store"),  # the listed store's own value wins
        (False, True, "default"),  # absent in the store: stores.default
        (False, False, "channels"),  # absent in both: channels.* (senders only), else unset
    ],
)
def test_each_store_key_falls_back_store_then_default_then_channels(
    key: str, listed: bool, default: bool, source: str
) -> None:
    """Every key: the store's value, else stores.default's, else channels.* (email and SMS senders), else None."""
    stores: dict[str, Any] = {"default": _only(DEFAULT, key) if default else {}, "be": _only(BE, key) if listed else {}}
    settings = Settings(stores=stores, channels=CHANNELS)
    value = resolve_value(settings, "be", key)
    if source == "store":
        assert value == _expected(_nested(BE, key), key)
    elif source == "default":
        assert value == _expected(_nested(DEFAULT, key), key)
    else:
        assert value == _nested(CHANNELS, key)


def test_a_present_list_replaces_the_default_list_instead_of_merging() -> None:
    """payment_methods [card] in a store is exactly [card], not the default's three methods plus card."""
    settings = Settings(stores={"default": DEFAULT, "be": {"payment_methods": ["card"]}})
    assert resolve_store(settings, "be").payment_methods == ("card",)
    assert resolve_store(settings, "fr").payment_methods == ("card", "paypal", "installments")


def test_an_unlisted_store_speaks_as_the_default_under_its_own_id() -> None:
    """A store id nobody configured gets the default shop's identity; the id itself is kept for stats."""
    directory = StoreDirectory.from_settings(Settings(stores={"default": DEFAULT}))
    identity = directory.get("fr")
    assert identity.id == "fr" and identity.name == "Maison Dupont" and identity.country == "FR"


def test_the_email_from_is_the_store_name_with_the_senders_address() -> None:
    """From = store name as display name + the address of email.sender (inherited from default)."""
    settings = Settings(stores={"default": DEFAULT, "be": {"name": "Maison Dupont Belgique"}})
    assert resolve_store(settings, "be").email_from() == "Maison Dupont Belgique <bonjour@maison-dupont.fr>"


def test_store_keys_are_overridable_one_by_one_or_as_a_whole_map_by_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RECOVERY_STORES__DEFAULT__NAME and RECOVERY_STORES__BE__SMS__SENDER set one key; RECOVERY_STORES the map."""
    monkeypatch.delenv("RECOVERY_CONFIG", raising=False)
    monkeypatch.setenv("RECOVERY_STORES__DEFAULT__NAME", "Maison Dupont")
    monkeypatch.setenv("RECOVERY_STORES__BE__SMS__SENDER", "DUPONTBE")
    settings = load_settings(None)
    assert resolve_store(settings, "be").name == "Maison Dupont"
    assert resolve_store(settings, "be").sms_sender == "DUPONTBE"
    monkeypatch.delenv("RECOVERY_STORES__DEFAULT__NAME")
    monkeypatch.delenv("RECOVERY_STORES__BE__SMS__SENDER")
    monkeypatch.setenv("RECOVERY_STORES", '{"default": {"name": "Atelier", "country": "BE"}}')
    assert resolve_store(load_settings(None), "x").country == "BE"


def test_an_unknown_country_is_refused_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A country the holidays package does not know stops start-up with the key and its variable."""
    monkeypatch.delenv("RECOVERY_CONFIG", raising=False)
    monkeypatch.setenv("RECOVERY_STORES__DEFAULT__COUNTRY", "XX")
    with pytest.raises(ConfigError, match=r"stores\.default\.country.*RECOVERY_STORES__DEFAULT__COUNTRY"):
        load_settings(None)


FLOWS = parse_flows(
    "flows:\n"
    "  - name: f\n"
    "    trigger: cart.abandoned\n"
    "    steps:\n"
    "      - {name: mail, after: 1h, channel: email, template: t}\n"
    "      - {name: text, after: 2h, channel: sms, template: t}\n"
)


def test_check_refuses_an_email_sending_store_without_name_or_address() -> None:
    """Each missing key is named with its env variable; a complete store passes."""
    settings = Settings(stores={"default": {"name": "Maison Dupont"}})
    problems = store_problems(settings, FLOWS, email_configured=True, sms_configured=False)
    assert len(problems) == 1 and "stores.default.address (env RECOVERY_STORES__DEFAULT__ADDRESS)" in problems[0]
    settings = Settings(stores={"default": DEFAULT, "be": {"name": "Maison Dupont Belgique"}})
    assert store_problems(settings, FLOWS, email_configured=True, sms_configured=True) == []


def test_check_refuses_an_alphanumeric_sms_sender_without_stop_text() -> None:
    """Shoppers cannot reply STOP to DUPONT: stop_text is required and named with its variable."""
    settings = Settings(stores={"default": {**DEFAULT, "sms": {"sender": "DUPONT"}}})
    problems = store_problems(settings, FLOWS, email_configured=True, sms_configured=True)
    assert len(problems) == 1 and "RECOVERY_STORES__DEFAULT__SMS__STOP_TEXT" in problems[0]
    numbered = Settings(stores={"default": {**DEFAULT, "sms": {"sender": "+33700000000"}}})
    assert store_problems(numbered, FLOWS, email_configured=True, sms_configured=True) == []


def test_a_dry_run_needs_no_shop_identity() -> None:
    """Nothing is really sent without configured providers: nothing is refused."""
    assert store_problems(Settings(), FLOWS, email_configured=False, sms_configured=False) == []


@pytest.mark.parametrize(
    ("shopper_locale", "store_locale", "expected"),
    [("de-DE", "fr-FR", "de-DE"), (None, "fr-FR", "fr-FR"), (None, None, "en")],
)
def test_the_message_language_is_the_shoppers_else_the_stores_else_english(
    shopper_locale: str | None, store_locale: str | None, expected: str
) -> None:
    """decide() picks the shopper's locale, else the store's, else en; templates see the store record."""
    from dataclasses import replace

    from recovery.steps.decide import SendMessage, decide
    from recovery.stores import StoreIdentity
    from tests.unit.test_decide import CUSTOMER, NOON, POLICY, _facts

    store = StoreIdentity(id="fr", name="Maison Dupont", locale=store_locale)
    facts = _facts(customer=replace(CUSTOMER, locale=shopper_locale), store=store)
    plan = decide(facts, POLICY, NOON)
    assert isinstance(plan, SendMessage)
    assert plan.locale == expected
    assert plan.context["store"]["name"] == "Maison Dupont"


def test_an_sms_to_a_store_closed_today_is_deferred_and_an_email_is_not() -> None:
    """decide() hands the store's closed days to the guards: SMS waits for tomorrow, email goes."""
    from datetime import timedelta

    from recovery.steps.decide import DeferStep, SendMessage, decide
    from recovery.stores import StoreIdentity
    from tests.unit.test_decide import NOON, POLICY, _facts, _step

    store = StoreIdentity(id="fr", name="Maison Dupont", closed_days=(NOON.date(),))
    sms = decide(_facts(flow_step=_step(ChannelName.SMS), store=store), POLICY, NOON)
    assert isinstance(sms, DeferStep) and sms.until.date() == NOON.date() + timedelta(days=1)
    assert isinstance(decide(_facts(store=store), POLICY, NOON), SendMessage)


def test_run_refuses_to_start_for_a_shop_without_a_name(capsys: pytest.CaptureFixture[str]) -> None:
    """`recovery run` runs the same check and stops, naming the key and its variable."""
    from pathlib import Path

    import typer

    from recovery.cli.main import _refuse_on_check_errors

    root = Path(__file__).resolve().parents[2]
    settings = Settings(
        channels={"transport": "providers", "email": {"sender": "shop@example.com"}},
        flows_file=root / "config" / "flows.yaml",
        templates_dir=root / "templates",
        security={"link_secret": "s"},
    )
    with pytest.raises(typer.Exit):
        _refuse_on_check_errors(settings)
    assert "RECOVERY_STORES__DEFAULT__NAME" in " ".join(capsys.readouterr().err.split())
