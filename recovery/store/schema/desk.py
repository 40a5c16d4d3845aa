"""The callback desk: tasks agents owe shoppers, their events, shoppers' requests and the helpdesk webhook."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from recovery.store.schema.columns import TS, metadata

callback_tasks = Table(
    "callback_tasks",
    metadata,
    # A phone call support agents owe a shopper: open -> claimed (by an agent) -> done (with an outcome).
    Column("task_id", String(64), primary_key=True),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("journey_id", String(64), nullable=False),
    Column("cart_id", String(128), nullable=False),
    Column("customer_key", String(160), nullable=False),
    Column("flow", String(128), nullable=False),
    Column("step", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("agent", String(128), nullable=True),
    Column("outcome", String(64), nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    # The desk: why the task exists, its rank (higher first), when it falls due in the shopper's calling
    # hours, and who holds it until when (a claim past ``claimed_until`` is free to take).
    Column("reason", String(32), nullable=False, server_default="flow"),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("due_at", TS, nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("claimed_until", TS, nullable=True),
    Column("completed_at", TS, nullable=True),
    # Helpdesk hand-off: null sent_at = still to POST; attempts and next try drive the backoff.
    Column("webhook_sent_at", TS, nullable=True),
    Column("webhook_attempts", Integer, nullable=False, server_default="0"),
    Column("webhook_next_at", TS, nullable=True),
    Index("ix_callback_tasks_status", "status", "created_at"),
    Index("ix_callback_tasks_queue", "status", "due_at"),
    Index("ix_callback_tasks_webhook", "webhook_sent_at", "webhook_next_at"),
)

callback_events = Table(
    "callback_events",
    metadata,
    # Append-only audit of the desk: every creation, claim, release, expiry and outcome, who and when.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("agent", String(128), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("note", Text, nullable=True),
    Column("at", TS, nullable=False),
    Index("ix_callback_events_task", "task_id", "at"),
)

callback_requests = Table(
    "callback_requests",
    metadata,
    # A shopper texted RAPPEL / CALL. ``id`` is derived from the Twilio MessageSid (and customer), so a
    # retried webhook adds nothing; ``task_id`` stays null until the callback channel makes a task of it.
    Column("id", String(64), primary_key=True),
    Column("customer_key", String(160), nullable=True),
    Column("phone_hash", String(64), nullable=False),
    Column("received_at", TS, nullable=False),
    Column("task_id", String(64), nullable=True),
    Index("ix_callback_requests_open", "task_id", "received_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    # Platform webhook deliveries already published (X-Shopify-Webhook-Id, Stripe event id,
    # X-WC-Webhook-Delivery-ID): a redelivery, even after a restart, is acknowledged and not published again.
    Column("platform", String(16), primary_key=True),
    Column("delivery_id", String(128), primary_key=True),
    Column("received_at", TS, nullable=False),
    Index("ix_webhook_deliveries_received", "received_at"),
)
