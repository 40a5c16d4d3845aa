"""The database schema (SQLAlchemy Core), one module per table group; Alembic migrations create it.

Importers name tables from here (``from recovery.store.schema import carts``); ``metadata`` holds them all
once every group below is imported, which this package does.
"""

from __future__ import annotations

from recovery.store.schema.attribution import clicks, conversions, discount_codes, feedback_answers, short_links
from recovery.store.schema.columns import MONEY, TS, UtcDateTime, metadata
from recovery.store.schema.consent import consent_ledger, inbound_sms
from recovery.store.schema.desk import callback_events, callback_requests, callback_tasks, webhook_deliveries
from recovery.store.schema.journeys import (
    carts,
    channel_pacing,
    customers,
    journeys,
    messages,
    outbox_events,
    processed_events,
    steps,
    workers,
)
from recovery.store.schema.staff import flow_versions, staff_sessions, template_versions

__all__ = [
    "MONEY",
    "TS",
    "UtcDateTime",
    "callback_events",
    "callback_requests",
    "callback_tasks",
    "carts",
    "channel_pacing",
    "clicks",
    "consent_ledger",
    "conversions",
    "customers",
    "discount_codes",
    "feedback_answers",
    "flow_versions",
    "inbound_sms",
    "journeys",
    "messages",
    "metadata",
    "outbox_events",
    "processed_events",
    "short_links",
    "staff_sessions",
    "steps",
    "template_versions",
    "webhook_deliveries",
    "workers",
]
