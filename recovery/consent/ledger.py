"""Opt-outs and opt-ins the shopper tells us directly (link, SMS keyword), and SMS callback requests."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.consent.authority import ADDRESS_OF_CONSENT, AddressKeys, LedgerEntry
from recovery.store.schema import callback_requests, consent_ledger, customers, inbound_sms
from recovery.store.sql import among, insert_ignore, insert_returning_new


class ConsentChannel(StrEnum):
    """The consents a customer row keeps (``consent_email``, ``consent_sms``, ``consent_phone``)."""

    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"

    @classmethod
    def for_channel(cls, name: str) -> ConsentChannel:
        """The consent a message channel needs: the callback channel calls, so it needs ``phone``."""
        return cls.PHONE if name == "callback" else cls(name)


class ConsentSource(StrEnum):
    """Where a ledger entry came from."""

    UNSUBSCRIBE_LINK = "unsubscribe_link"
    TWILIO_STOP = "twilio_stop"
    TWILIO_START = "twilio_start"
    PROVIDER_21610 = "twilio_21610"
    CONSENT_EVENT = "consent_event"
    AGENT_DO_NOT_CALL = "agent_do_not_call"  # the shopper told an agent on the phone
    AGENT_WRONG_NUMBER = "agent_wrong_number"  # the number is not the shopper's: never call it again


_COLUMNS = {
    ConsentChannel.EMAIL: customers.c.consent_email,
    ConsentChannel.SMS: customers.c.consent_sms,
    ConsentChannel.PHONE: customers.c.consent_phone,
}


async def record_consent(
    conn: AsyncConnection,
    customer_key: str,
    channel: ConsentChannel,
    *,
    consent: bool,
    source: ConsentSource,
    now: datetime,
    addresses: AddressKeys,
) -> bool:
    """Set the customer's consent and append it to the ledger; False when both already said so.

    A customer the service has not met yet gets a row, so the opt-out holds when their events arrive;
    ``updated_at`` moves to ``now`` so an older event's consent cannot overwrite this one. The entry is
    also keyed by the customer's address (hashed), so a guest's next cart finds it.
    """
    column = _COLUMNS[channel]
    await insert_ignore(conn, customers, [{"customer_key": customer_key, "updated_at": now}])
    # The row lock (PostgreSQL) serialises two simultaneous requests, so only one writes the ledger.
    current = await conn.scalar(select(column).where(customers.c.customer_key == customer_key).with_for_update())
    last = await conn.scalar(
        select(consent_ledger.c.consent)
        .where(consent_ledger.c.customer_key == customer_key, consent_ledger.c.channel == channel.value)
        .order_by(consent_ledger.c.recorded_at.desc(), consent_ledger.c.id.desc())
        .limit(1)
    )
    address = await conn.scalar(
        select(customers.c[ADDRESS_OF_CONSENT[channel.value]]).where(customers.c.customer_key == customer_key)
    )
    await _append_if_changed(conn, addresses.current(address), channel, consent, source, now)
    if current is consent and last is consent:
        return False
    await conn.execute(
        update(customers)
        .where(customers.c.customer_key == customer_key)
        .values({column.name: consent, "updated_at": now})
    )
    await conn.execute(
        consent_ledger.insert().values(
            customer_key=customer_key, channel=channel.value, consent=consent, source=source.value, recorded_at=now
        )
    )
    return True


async def customers_with_phone(conn: AsyncConnection, phone: str) -> list[str]:
    """Keys of the customers whose phone is exactly ``phone`` (E.164)."""
    query = select(customers.c.customer_key).where(customers.c.phone == phone).order_by(customers.c.customer_key)
    return list((await conn.scalars(query)).all())


def phone_hash(phone: str, secret: str) -> str:
    """A keyed hash of a phone number: matches requests from one number without storing it."""
    return hmac.new(secret.encode(), phone.encode(), hashlib.sha256).hexdigest()


def phone_hashes(phone: str | None, secrets: Iterable[str]) -> list[str]:
    """The phone's keyed hash under each secret (current and previous), to find its callback requests."""
    return [phone_hash(phone.strip(), secret) for secret in secrets if secret] if phone else []


async def first_inbound_sms(conn: AsyncConnection, sms_sid: str, *, now: datetime) -> bool:
    """Record an inbound SMS; False when its ``MessageSid`` was seen before (a retry or a replay).

    Keywords are applied once per sid, so a STOP replayed after a START cannot flip consent back. A message
    without a sid (Twilio always sends one; the signature was checked) is applied each time.
    """
    if not sms_sid:
        return True
    new = await insert_returning_new(conn, inbound_sms, "sms_sid", [{"sms_sid": sms_sid[:64], "received_at": now}])
    return bool(new)


async def record_callback_request(
    conn: AsyncConnection, *, sms_sid: str, customer_key: str | None, phone_hash: str, now: datetime
) -> bool:
    """Store a "call me" request once per inbound SMS and customer; False when it was already stored."""
    request_id = hashlib.sha256(f"{sms_sid}|{customer_key or ''}".encode()).hexdigest()[:32]
    found = await conn.scalar(select(callback_requests.c.id).where(callback_requests.c.id == request_id))
    if found is not None:
        return False
    await insert_ignore(
        conn,
        callback_requests,
        [{"id": request_id, "customer_key": customer_key, "phone_hash": phone_hash, "received_at": now}],
    )
    return True


async def _append_if_changed(
    conn: AsyncConnection,
    key: str | None,
    channel: ConsentChannel,
    consent: bool,
    source: ConsentSource,
    now: datetime,
) -> None:
    """Append a ledger row for ``key`` unless its latest entry already says ``consent``."""
    if key is None:
        return
    last = await conn.scalar(
        select(consent_ledger.c.consent)
        .where(consent_ledger.c.customer_key == key, consent_ledger.c.channel == channel.value)
        .order_by(consent_ledger.c.recorded_at.desc(), consent_ledger.c.id.desc())
        .limit(1)
    )
    if last is not consent:
        await conn.execute(
            consent_ledger.insert().values(
                customer_key=key, channel=channel.value, consent=consent, source=source.value, recorded_at=now
            )
        )


async def record_address_consent(
    conn: AsyncConnection,
    address: str,
    channel: ConsentChannel,
    *,
    consent: bool,
    source: ConsentSource,
    now: datetime,
    addresses: AddressKeys,
) -> None:
    """A ledger entry keyed by the address alone: STOP from a number the service has no customer for yet."""
    await _append_if_changed(conn, addresses.current(address), channel, consent, source, now)


async def record_event_consent(
    conn: AsyncConnection,
    *,
    customer_key: str,
    email: str | None,
    phone: str | None,
    consents: dict[str, bool | None],
    at: datetime,
    addresses: AddressKeys,
) -> None:
    """A ``consent.changed`` event: an explicit statement, so it goes in the ledger at its own time."""
    contacts, keys = {"email": email, "phone": phone}, addresses
    for name, value in consents.items():
        if value is None:
            continue
        channel = ConsentChannel(name)
        for key in (customer_key, keys.current(contacts[ADDRESS_OF_CONSENT[name]])):
            await _append_if_changed(conn, key, channel, value, ConsentSource.CONSENT_EVENT, at)


async def ledger_entries(
    conn: AsyncConnection,
    *,
    customer_key: str,
    email: str | None,
    phone: str | None,
    addresses: AddressKeys,
) -> list[LedgerEntry]:
    """Every ledger entry about this customer or their addresses, each for the consents its key covers."""
    found = await ledger_entries_many(conn, [(customer_key, email, phone)], addresses)
    return found[customer_key]


async def ledger_entries_many(
    conn: AsyncConnection, customers_: Sequence[tuple[str, str | None, str | None]], addresses: AddressKeys
) -> dict[str, list[LedgerEntry]]:
    """``ledger_entries`` for each (customer key, email, phone), by customer key, in one query."""
    wanted: dict[str, tuple[set[str], set[str]]] = {}
    keys: set[str] = set()
    for customer_key, email, phone in customers_:
        email_keys, phone_keys = set(addresses.every(email)), set(addresses.every(phone))
        wanted[customer_key] = (email_keys, phone_keys)
        keys |= {customer_key, *email_keys, *phone_keys}
    query = select(
        consent_ledger.c.id,
        consent_ledger.c.customer_key,
        consent_ledger.c.channel,
        consent_ledger.c.consent,
        consent_ledger.c.recorded_at,
    ).where(among(conn, consent_ledger.c.customer_key, sorted(keys)))
    rows = (await conn.execute(query)).mappings().all() if keys else []
    return {
        customer_key: [_entry(row) for row in rows if _speaks_for(row, customer_key, email_keys, phone_keys)]
        for customer_key, (email_keys, phone_keys) in wanted.items()
    }


def _speaks_for(row: Any, customer_key: str, email_keys: set[str], phone_keys: set[str]) -> bool:
    """The entry is about this customer: an email hash speaks only for email consent; a phone hash only for
    sms and phone."""
    key, channel = row["customer_key"], row["channel"]
    if key in email_keys and channel != "email":
        return False
    if key in phone_keys and channel == "email":
        return False
    return key == customer_key or key in email_keys or key in phone_keys


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(channel=row["channel"], consent=row["consent"], recorded_at=row["recorded_at"], seq=row["id"])
