"""Which consent holds: the service's own ledger beats the consent copied into cart events; no I/O.

The ledger records what the shopper told the service (unsubscribe link, SMS STOP/START, a Twilio 21610,
a ``do_not_call`` request) and explicit ``consent.changed`` events. A cart event's ``consent`` block is
only the shop's copy, often stale, so it can never undo a ledger entry. Entries are also keyed by a keyed
hash (HMAC with a key derived from the link secret) of the email address / phone number, so a guest (no
customer id) stays opted out on their next cart, and a copy of the table cannot be reversed by trying numbers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from recovery.journeys.records import CustomerState
from recovery.states import ChannelName, StepMode

# The address a consent is about: email consent follows the email address, SMS and phone the number.
ADDRESS_OF_CONSENT = {"email": "email", "sms": "phone", "phone": "phone"}
_PREFIX = "addr:"


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One ledger row as the decision needs it."""

    channel: str  # the consent name: email, sms or phone
    consent: bool
    recorded_at: datetime
    seq: int = 0


def address_key(address: str | None, key: bytes) -> str | None:
    """The ledger key of an email address or phone number: a keyed hash, so the ledger holds no address."""
    if not address:
        return None
    return _PREFIX + hmac.new(key, address.strip().lower().encode(), hashlib.sha256).hexdigest()[:48]


@dataclass(frozen=True)
class AddressKeys:
    """The keys of the ledger's address hashes: the first writes, every one is read (during a rotation)."""

    keys: tuple[bytes, ...]

    def current(self, address: str | None) -> str | None:
        """The key new entries about ``address`` are written under."""
        return address_key(address, self.keys[0])

    def every(self, address: str | None) -> list[str]:
        """Every key entries about ``address`` may have been written under."""
        return [found for key in self.keys if (found := address_key(address, key)) is not None]


def latest(entries: Iterable[LedgerEntry], consent: str) -> bool | None:
    """The newest ledger verdict for ``consent`` (email, sms, phone), or None when there is none."""
    relevant = [entry for entry in entries if entry.channel == consent]
    if not relevant:
        return None
    return max(relevant, key=lambda entry: (entry.recorded_at, entry.seq)).consent


def effective(carried: bool | None, entries: Iterable[LedgerEntry], consent: str) -> bool | None:
    """The consent that holds: the newest ledger entry if any, else what the events carried."""
    ledger = latest(entries, consent)
    return carried if ledger is None else ledger


def needed_consents(channel: ChannelName, mode: str | None) -> tuple[str, ...]:
    """The consents a message needs: a callback offer is an SMS (sms) about a call (phone)."""
    if channel == ChannelName.CALLBACK:
        return ("phone",) if mode == StepMode.DIRECT else ("sms", "phone")
    return (channel.value,)


def with_ledger(customer: CustomerState, entries: Iterable[LedgerEntry]) -> CustomerState:
    """The customer with each consent replaced by the ledger's verdict where the ledger has one."""
    entries = list(entries)
    return replace(
        customer,
        consent_email=effective(customer.consent_email, entries, "email"),
        consent_sms=effective(customer.consent_sms, entries, "sms"),
        consent_phone=effective(customer.consent_phone, entries, "phone"),
    )


def message_consent(customer: CustomerState | None, channel: ChannelName, mode: str | None) -> bool | None:
    """Consent for a message: False if any needed consent is refused, True only if all are given."""
    if customer is None:
        return None
    values = [getattr(customer, f"consent_{name}") for name in needed_consents(channel, mode)]
    if any(value is False for value in values):
        return False
    return True if all(value is True for value in values) else None
