"""Carts, customers and their journeys, the steps and messages they fire, and the events they publish."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from recovery.store.schema.columns import MONEY, TS, metadata

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
)

carts = Table(
    "carts",
    metadata,
    Column("cart_id", String(128), primary_key=True),
    Column("store", String(128), nullable=False),
    Column("customer_key", String(160), nullable=False),
    Column("cart", JSON, nullable=True),
    Column("value", MONEY, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("item_count", Integer, nullable=False, default=0),
    Column("checkout_step", String(16), nullable=True),
    Column("payment", JSON, nullable=True),
    Column("first_event_at", TS, nullable=False),
    Column("last_event_at", TS, nullable=False),
    Column("abandon_at", TS, nullable=True),
    Column("abandoned_at", TS, nullable=True),
    Column("ordered_at", TS, nullable=True),
    Column("order_id", String(128), nullable=True),
    Column("order_value", MONEY, nullable=True),
    Column("refunded_value", MONEY, nullable=True),
    Index("ix_carts_abandon_at", "abandon_at"),
)

customers = Table(
    "customers",
    metadata,
    Column("customer_key", String(160), primary_key=True),
    Column("email", String(320), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("first_name", String(200), nullable=True),
    Column("locale", String(35), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("consent_email", Boolean, nullable=True),
    Column("consent_sms", Boolean, nullable=True),
    Column("consent_phone", Boolean, nullable=True),
    Column("updated_at", TS, nullable=False),
)

journeys = Table(
    "journeys",
    metadata,
    Column("journey_id", String(64), primary_key=True),
    Column("cart_id", String(128), nullable=False),
    Column("flow", String(128), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("customer_key", String(160), nullable=False),
    Column("store", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("holdout", Boolean, nullable=False, default=False),
    Column("started_at", TS, nullable=False),
    Column("trigger_event_at", TS, nullable=False),
    Column("ended_at", TS, nullable=True),
    Column("end_reason", String(64), nullable=True),
    Column("context", JSON, nullable=True),
    Column("messages_sent", Integer, nullable=False, default=0),
    Column("clicked", Boolean, nullable=False, default=False),
    # The flow version the journey started with (0: the flows file); its steps are read from it.
    Column("flow_version", Integer, nullable=False, default=0),
    Index("ix_journeys_cart", "cart_id"),
    Index("ix_journeys_reentry", "flow", "customer_key", "started_at"),
)

steps = Table(
    "steps",
    metadata,
    Column("step_id", String(200), primary_key=True),  # "<journey_id>:<step name>"
    Column("journey_id", String(64), nullable=False),
    Column("cart_id", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("position", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("due_at", TS, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("reason", String(255), nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_at", TS, nullable=True),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("journey_id", "name", name="uq_steps_journey_name"),
    Index("ix_steps_due", "status", "due_at"),
    Index("ix_steps_cart", "cart_id"),
)

# One row per running scheduler: a claim whose worker stopped beating is taken over within seconds.
workers = Table(
    "workers",
    metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("heartbeat_at", TS, nullable=False),
    Column("started_at", TS, nullable=False),
)

# Provider rates for the whole deployment: per rate-limited channel, where its next free send slot starts
# (epoch seconds on the database's clock), moved on by one atomic upsert per block of sends (PostgreSQL only).
channel_pacing = Table(
    "channel_pacing",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("next_free", Float, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    # The idempotency key: journey + step. One row, whatever happens, so nothing is sent twice.
    Column("message_id", String(200), primary_key=True),
    Column("journey_id", String(64), nullable=False),
    Column("step_id", String(200), nullable=False),
    Column("cart_id", String(128), nullable=False),
    Column("customer_key", String(160), nullable=False),
    Column("flow", String(128), nullable=False),
    Column("step", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("template", String(128), nullable=True),
    # The A/B variant of a split step (None: the step names one template).
    Column("variant", String(128), nullable=True),
    # Which saved versions rendered it ("fr/cart_reminder.email html@3 subject@0 txt@0"; @0 = default file).
    Column("template_version", String(255), nullable=True),
    Column("state", String(16), nullable=False),
    Column("provider_id", String(128), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error_code", String(64), nullable=True),
    Column("error", Text, nullable=True),
    Column("detail", JSON, nullable=True),
    # Exactly what went to the provider, so a reconcile after a crash looks up (or resends) the same text.
    Column("content", JSON, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("sent_at", TS, nullable=True),
    Column("updated_at", TS, nullable=False),
    Index("ix_messages_customer_sent", "customer_key", "sent_at"),
    Index("ix_messages_journey", "journey_id"),
    Index("ix_messages_state", "state"),
    # A delivery receipt that carries only the provider's id (no ``?message_id=``) finds its message by it.
    Index("ix_messages_provider_id", "provider_id"),
)

outbox_events = Table(
    "outbox_events",
    metadata,
    # Events for Kafka written in the same transaction as the state change they describe;
    # the relay publishes then deletes them (at-least-once, nothing lost on a crash).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic_role", String(32), nullable=False),
    Column("key", String(128), nullable=True),
    Column("payload", Text, nullable=False),
    Column("created_at", TS, nullable=False),
)
