"""``recovery erase`` removes every trace of one shopper; ``purge`` removes carts past retention (both databases).

Rows are seeded in every table of the schema, so a table added later without an erase rule fails here.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Column, Float, Integer, Numeric, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.consent import ledger
from recovery.consent.authority import AddressKeys, address_key
from recovery.consent.ledger import phone_hash
from recovery.keys import link_keys
from recovery.store.database import create_engine
from recovery.store.forget import NO_PERSONAL_DATA, erase_shopper, purge_before
from recovery.store.migrate import upgrade_to_head
from recovery.store.schema import UtcDateTime, metadata
from tests.commands import LINK_SECRET, recovery

SECRET = "link-secret"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def shopper(name: str, *, email: str, phone: str) -> dict[str, str]:
    """The identifying values of one shopper, by column name."""
    return {
        "customer_key": f"cust-{name}",
        "cart_id": f"cart-{name}",
        "journey_id": f"journey-{name}",
        "task_id": f"task-{name}",
        "email": email,
        "phone": phone,
        "phone_hash": phone_hash(phone, SECRET),
    }


ANNA = shopper("anna", email="Anna@Example.com", phone="+33611111111")
BRUNO = shopper("bruno", email="bruno@example.com", phone="+33622222222")


def value_for(column: Column[Any], person: dict[str, str], at: datetime) -> Any:
    """A value of the column's type; identifying columns carry the person's own values."""
    if column.name in person:
        return person[column.name]
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return at
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        return Decimal("10.00")
    if isinstance(kind, Float):
        return 1.5
    if isinstance(kind, Integer):
        return 1
    if isinstance(kind, JSON):
        return {"note": person["customer_key"]}
    if isinstance(kind, String | Text):
        length = getattr(kind, "length", None) or 200
        return f"{person['customer_key']}-{column.name}"[:length]
    raise AssertionError(f"no sample value for {column.table.name}.{column.name} ({kind!r})")


def row_for(table: Table, person: dict[str, str], at: datetime) -> dict[str, Any]:
    return {
        column.name: value_for(column, person, at)
        for column in table.columns
        if not (column.primary_key and column.autoincrement is True and isinstance(column.type, Integer))
    }


async def seed(engine: AsyncEngine, person: dict[str, str], at: datetime) -> None:
    """One row per table for ``person``, every timestamp at ``at``."""
    async with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if table.name not in NO_PERSONAL_DATA:
                await conn.execute(insert(table).values(row_for(table, person, at)))


async def rows_of(engine: AsyncEngine, person: dict[str, str]) -> dict[str, int]:
    """How many rows of each table mention any identifying value of ``person``."""
    found: dict[str, int] = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in NO_PERSONAL_DATA:
                continue
            for row in (await conn.execute(select(table))).mappings():
                if any(str(value) in person.values() for value in row.values()):
                    found[table.name] = found.get(table.name, 0) + 1
    return found


EVERY_TABLE = {table.name: 1 for table in metadata.sorted_tables if table.name not in NO_PERSONAL_DATA}


@pytest.mark.parametrize("by", ["email", "phone"])
async def test_erase_removes_every_trace_of_one_shopper_and_nothing_of_another(engine: AsyncEngine, by: str) -> None:
    await seed(engine, ANNA, NOW)
    await seed(engine, BRUNO, NOW)
    assert await rows_of(engine, ANNA) == EVERY_TABLE

    identity = {"email": " anna@example.COM "} if by == "email" else {"phone": ANNA["phone"]}
    counts = await erase_shopper(engine, phone_hashes=ledger.phone_hashes(identity.get("phone"), [SECRET]), **identity)

    assert await rows_of(engine, ANNA) == {}
    assert await rows_of(engine, BRUNO) == EVERY_TABLE
    assert counts["customers"] == counts["carts"] == counts["messages"] == 1


async def test_erase_by_phone_removes_callback_requests_from_an_unknown_number(engine: AsyncEngine) -> None:
    stranger = shopper("stranger", email="x@example.com", phone="+33633333333")
    async with engine.begin() as conn:
        table = metadata.tables["callback_requests"]
        await conn.execute(insert(table).values(row_for(table, stranger, NOW) | {"customer_key": None}))
    counts = await erase_shopper(
        engine, phone=stranger["phone"], phone_hashes=ledger.phone_hashes(stranger["phone"], ["rotated-away", SECRET])
    )
    assert counts == {"callback_requests": 1}


async def test_erase_of_an_unknown_shopper_changes_nothing(engine: AsyncEngine) -> None:
    await seed(engine, BRUNO, NOW)
    assert await erase_shopper(engine, email="nobody@example.com") == {}
    assert await rows_of(engine, BRUNO) == EVERY_TABLE


async def test_purge_removes_carts_and_messages_older_than_the_retention_period(engine: AsyncEngine) -> None:
    await seed(engine, ANNA, NOW - timedelta(days=200))
    await seed(engine, BRUNO, NOW - timedelta(days=10))

    counts = await purge_before(engine, NOW - timedelta(days=90))

    assert await rows_of(engine, ANNA) == {}
    assert await rows_of(engine, BRUNO) == EVERY_TABLE
    assert counts["carts"] == counts["messages"] == counts["customers"] == 1


async def test_purge_drops_old_delivery_ids_and_sessions_but_keeps_the_redelivery_window(engine: AsyncEngine) -> None:
    """Webhook delivery ids, inbound SMS ids and expired sessions go with the retention period, except a
    delivery id younger than a week (a platform may still redeliver it), whatever the period."""

    def bookkeeping(age_days: int, name: str) -> dict[str, list[dict[str, Any]]]:
        at = NOW - timedelta(days=age_days)
        session = {"id": name, "token_hash": "h", "name": "Agent", "role": "agent", "created_at": at}
        return {
            "webhook_deliveries": [{"platform": "shopify", "delivery_id": name, "received_at": at}],
            "inbound_sms": [{"sms_sid": name, "received_at": at}],
            "sessions": [{**session, "expires_at": at}],
        }

    async with engine.begin() as conn:
        for age, name in ((200, "old"), (5, "recent"), (1, "fresh")):
            for table, rows in bookkeeping(age, name).items():
                await conn.execute(insert(metadata.tables[table]), rows)

    counts = await purge_before(engine, NOW - timedelta(days=3), now=NOW)  # a retention shorter than the window

    async with engine.connect() as conn:
        left = {
            "webhook_deliveries": set(await conn.scalars(select(metadata.tables["webhook_deliveries"].c.delivery_id))),
            "inbound_sms": set(await conn.scalars(select(metadata.tables["inbound_sms"].c.sms_sid))),
            "sessions": set(await conn.scalars(select(metadata.tables["sessions"].c.id))),
        }
    assert left == {name: {"recent", "fresh"} for name in left}
    assert counts == {"webhook_deliveries": 1, "inbound_sms": 1, "sessions": 1}


async def test_the_erase_command_reports_counts_without_echoing_the_address(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        await seed(engine, ANNA, NOW)
        result = await recovery("erase", "--email", "anna@example.com", database_url=database_url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "customers: 1 row(s) deleted" in result.stdout
        assert "anna" not in (result.stdout + result.stderr).lower()
        assert await rows_of(engine, ANNA) == {}
    finally:
        await engine.dispose()
    both = await recovery("erase", "--email", "a@b.c", "--phone", "+1", database_url=database_url, cwd=tmp_path)
    assert both.returncode == 2 and "exactly one of --email or --phone" in both.stderr


async def test_erase_keeps_the_opt_out_under_a_keyed_hash_that_cannot_be_reversed(
    database_url: str, tmp_path: Path
) -> None:
    """After ``recovery erase``, the number's opt-out is still in force for a new cart, and what is kept is an
    HMAC under a key derived from the link secret: hashing candidate numbers (plain SHA-256) finds nothing."""
    addresses = AddressKeys(link_keys(LINK_SECRET).addresses)
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        await seed(engine, ANNA, NOW)
        async with engine.begin() as conn:
            await ledger.record_consent(
                conn,
                ANNA["customer_key"],
                ledger.ConsentChannel.SMS,
                consent=False,
                source=ledger.ConsentSource.TWILIO_STOP,
                now=NOW,
                addresses=addresses,
            )
        result = await recovery("erase", "--phone", ANNA["phone"], database_url=database_url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        async with engine.connect() as conn:
            table = metadata.tables["consent_ledger"]
            kept = (await conn.execute(select(table.c.customer_key, table.c.consent))).all()
            fresh = await ledger.ledger_entries(
                conn, customer_key="guest-new-cart", email=None, phone=ANNA["phone"], addresses=addresses
            )
    finally:
        await engine.dispose()
    assert [(key, consent) for key, consent in kept] == [(address_key(ANNA["phone"], addresses.keys[0]), False)]
    unsalted = hashlib.sha256(ANNA["phone"].encode()).hexdigest()[:48]
    assert unsalted not in kept[0][0] and ANNA["phone"] not in kept[0][0]
    assert [entry.consent for entry in fresh] == [False]  # the suppression outlives the erase


async def test_purge_without_a_retention_period_says_which_setting_is_missing(tmp_path: Path) -> None:
    result = await recovery("purge", database_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "retention.days is not set" in result.stderr
