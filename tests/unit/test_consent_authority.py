"""The consent ledger beats the consent copied into cart events; callback offers need sms and phone."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from recovery.consent.authority import AddressKeys, LedgerEntry, address_key, effective, message_consent, with_ledger
from recovery.journeys.records import CustomerState
from recovery.states import ChannelName

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def entry(channel: str, consent: bool, minutes: int = 0, seq: int = 0) -> LedgerEntry:
    return LedgerEntry(channel=channel, consent=consent, recorded_at=T0 + timedelta(minutes=minutes), seq=seq)


@pytest.mark.parametrize(
    ("carried", "entries", "expected"),
    [
        pytest.param(True, [], True, id="no ledger entry: the event's consent holds"),
        pytest.param(None, [], None, id="nothing known"),
        pytest.param(True, [entry("sms", False)], False, id="an opt-out beats stale consent in events"),
        pytest.param(True, [entry("sms", False), entry("sms", True, 5)], True, id="a newer opt-in lifts it"),
        pytest.param(True, [entry("sms", True), entry("sms", False, 5)], False, id="a newer opt-out wins"),
        pytest.param(False, [entry("email", True)], False, id="another channel's entry changes nothing"),
        pytest.param(True, [entry("sms", True, seq=1), entry("sms", False, seq=2)], False, id="same time: later"),
    ],
)
def test_effective_sms_consent(carried: bool | None, entries: list[LedgerEntry], expected: bool | None) -> None:
    assert effective(carried, entries, "sms") is expected


@pytest.mark.parametrize(
    ("email", "sms", "phone", "channel", "mode", "expected"),
    [
        (True, None, None, ChannelName.EMAIL, "offer", True),
        (False, True, True, ChannelName.EMAIL, "offer", False),
        (None, True, None, ChannelName.SMS, "offer", True),
        pytest.param(None, False, True, ChannelName.CALLBACK, "offer", False, id="offer by SMS needs sms consent"),
        pytest.param(None, True, False, ChannelName.CALLBACK, "offer", False, id="and phone consent"),
        pytest.param(None, True, None, ChannelName.CALLBACK, "offer", None, id="unknown phone is not consent"),
        pytest.param(None, True, True, ChannelName.CALLBACK, "offer", True, id="both given"),
        pytest.param(None, False, True, ChannelName.CALLBACK, "direct", True, id="a direct call needs phone only"),
    ],
)
def test_message_consent(
    email: bool | None, sms: bool | None, phone: bool | None, channel: ChannelName, mode: str, expected: bool | None
) -> None:
    customer = CustomerState(customer_key="c", updated_at=T0, consent_email=email, consent_sms=sms, consent_phone=phone)
    assert message_consent(customer, channel, mode) is expected


def test_with_ledger_replaces_each_consent_independently() -> None:
    customer = CustomerState(customer_key="c", updated_at=T0, consent_email=True, consent_sms=True, consent_phone=True)
    updated = with_ledger(customer, [entry("email", False), entry("phone", False)])
    assert (updated.consent_email, updated.consent_sms, updated.consent_phone) == (False, True, False)


KEY = b"k" * 32


def test_address_keys_hold_no_address_and_ignore_case() -> None:
    key = address_key("Claire@Example.com", KEY)
    assert key == address_key("claire@example.com ", KEY)
    assert key is not None and "example" not in key
    assert address_key(None, KEY) is None


def test_an_address_key_cannot_be_found_by_hashing_numbers_without_the_secret() -> None:
    """Keyed: the plain SHA-256 of the number (what anyone can compute) is not the key, and keys differ."""
    phone = "+33612345678"
    key = address_key(phone, KEY)
    assert key is not None
    assert hashlib.sha256(phone.encode()).hexdigest()[:48] not in key
    assert key != address_key(phone, b"other-key" * 4)


def test_address_keys_write_with_the_current_key_and_read_every_key() -> None:
    """During a rotation, entries under the previous key are still found; new ones use the current key."""
    keys = AddressKeys((KEY, b"p" * 32))
    assert keys.current("a@b.fr") == address_key("a@b.fr", KEY)
    assert keys.every("a@b.fr") == [address_key("a@b.fr", KEY), address_key("a@b.fr", b"p" * 32)]
    assert keys.every(None) == []
