"""The pure decisions' configuration, read from settings: journey rules, guards, channel rates."""

from __future__ import annotations

from recovery.consent.authority import AddressKeys
from recovery.journeys.apply import Rules
from recovery.journeys.holdout import in_holdout
from recovery.keys import link_keys
from recovery.rules import Flows
from recovery.rules.flow_book import FlowBook
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.steps.guards import GuardPolicy


def address_keys(settings: Settings) -> AddressKeys:
    """The consent ledger's address-hash keys, derived from the link secret (and the previous one)."""
    security = settings.security
    return AddressKeys(link_keys(security.required_link_secret(), security.previous_link_secret).addresses)


def build_rules(settings: Settings, flows: Flows | FlowBook) -> Rules:
    """The pure decisions' configuration from settings."""
    percent = settings.guards.holdout_percent
    salt = settings.guards.holdout_salt
    return Rules(
        flows=flows,
        idle_after=settings.abandonment.idle_after,
        in_holdout=lambda key: in_holdout(key, salt=salt, percent=percent),
    )


def guard_policy(settings: Settings) -> GuardPolicy:
    """Guards' configuration from settings."""
    return GuardPolicy(
        quiet_hours=settings.guards.quiet_hours,
        stores=settings.guards.stores,
        frequency_cap=settings.guards.frequency_cap,
        frequency_window=settings.guards.frequency_window,
    )


def channel_rates(settings: Settings) -> dict[str, float]:
    """Sends per second of each rate-limited channel; callback offers are texted through the SMS sender."""
    email, sms = settings.channels.email.max_per_second, settings.channels.sms.max_per_second
    rates = {ChannelName.EMAIL.value: email} if email else {}
    if sms:
        rates |= {ChannelName.SMS.value: sms, ChannelName.CALLBACK.value: sms}
    return rates
