"""``stores.<id>``: each shop front's identity, language, calendar and offers (contract stores.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from recovery.calendar import QuietHoursPolicy, known_country
from recovery.settings.base import Section

# --- stores: each shop front's identity, language, calendar and offers (contract stores.md) ---------------
# Every key is optional here: a listed store's absent key falls back to ``stores.default``, then to
# ``channels.*`` (``recovery.stores.resolve_store``); a present key replaces the default's whole value.

PaymentMethod = Literal["card", "paypal", "installments", "apple_pay", "google_pay", "bank_transfer"]


def _blank_is_unset(value: object) -> object:
    """An empty string (a Helm value left "", an empty variable) means "not set": the fallback applies."""
    return None if isinstance(value, str) and not value.strip() else value


class StoreSection(Section):
    @field_validator("*", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return _blank_is_unset(value)


class StoreEmailSettings(StoreSection):
    """The store's email sender (its address is used, with the store's name as display name) and Reply-To."""

    sender: str | None = None
    reply_to: str | None = None


class StoreSmsSettings(StoreSection):
    """The store's SMS sender (E.164 number, Messaging Service SID, or an alphanumeric id) and opt-out text."""

    sender: str | None = None
    stop_text: str | None = None


class StoreSettings(StoreSection):
    """One shop front, as ``stores.<id>``; see the contract for each key."""

    name: str | None = None
    address: str | None = None
    locale: str | None = None
    timezone: str | None = None
    country: str | None = None
    closed_days: list[date] | None = None
    email: StoreEmailSettings = StoreEmailSettings()
    sms: StoreSmsSettings = StoreSmsSettings()
    terms_url: str | None = None
    support_phone: str | None = None
    payment_methods: list[PaymentMethod] | None = None
    free_shipping_threshold: Decimal | None = Field(default=None, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            QuietHoursPolicy(timezone=value)  # the one IANA check, with its message
        return value

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is not None and not known_country(value):
            raise ValueError(f"{value!r} is not a country the holidays package knows: write e.g. FR, BE, DE")
        return value.upper() if value else value
