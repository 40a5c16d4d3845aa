"""Shoppers' consent: the ledger of every change and the inbound SMS that carried one."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
)

from recovery.store.schema.columns import TS, metadata

consent_ledger = Table(
    "consent_ledger",
    metadata,
    # Append-only proof of each opt-out / opt-in the service received (unsubscribe link, SMS STOP/START);
    # ``channel`` is the consent name: email, sms or phone.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_key", String(160), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("consent", Boolean, nullable=False),
    Column("source", String(32), nullable=False),
    Column("recorded_at", TS, nullable=False),
    Index("ix_consent_ledger_customer", "customer_key", "channel", "recorded_at"),
)

inbound_sms = Table(
    "inbound_sms",
    metadata,
    # Each inbound SMS keyword is applied once per Twilio ``MessageSid``: a replayed STOP after a START
    # finds its sid here and changes nothing.
    Column("sms_sid", String(64), primary_key=True),
    Column("received_at", TS, nullable=False),
)
