"""Opt-outs and opt-ins the shopper tells us directly (link, SMS keyword), and SMS callback requests."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.store.schema import callback_requests, consent_ledger, customers
from recovery.store.sql import insert_ignore


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
) -> bool:
    """Set the customer's consent and append it to the ledger; False when both already said so.

    A customer the service has not met yet gets a row, so the opt-out holds when their events arrive;
    ``updated_at`` moves to ``now`` so an older event's consent cannot overwrite this one.
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
