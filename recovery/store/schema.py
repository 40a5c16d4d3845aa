"""The database schema (SQLAlchemy Core). Alembic migrations under ``migrations/`` create it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back timezone-aware, on SQLite (naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store: pass timezone-aware UTC times")
        value = value.astimezone(UTC)
        # SQLite keeps text: naive UTC strings compare correctly, mixed offsets would not.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)


TS = UtcDateTime()
MONEY = Numeric(14, 2)

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

# Marketers' saved template sources; the newest version of a path is live (the file is version 0).
template_versions = Table(
    "template_versions",
    metadata,
    Column("path", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("comment", Text, nullable=True),
)

# Marketers' saved flows (the YAML of one flow); the newest version of a name is live (the file is version 0).
flow_versions = Table(
    "flow_versions",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("comment", Text, nullable=True),
)

# "Why did you leave?" answers: one row per journey, the latest answer counts.
feedback_answers = Table(
    "feedback_answers",
    metadata,
    Column("journey_id", String(64), primary_key=True),
    Column("cart_id", String(128), nullable=False),
    Column("store", String(128), nullable=False),
    Column("answer", String(32), nullable=False),
    Column("answered_at", TS, nullable=False),
    Index("ix_feedback_answered", "answered_at"),
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

discount_codes = Table(
    "discount_codes",
    metadata,
    # One code per journey step that offers one; registered in the shop by an optional hook.
    Column("code", String(32), primary_key=True),
    Column("journey_id", String(64), nullable=False),
    Column("step", String(128), nullable=False),
    Column("percent", Integer, nullable=False),
    Column("free_shipping", Boolean, nullable=False, default=False),
    Column("expires_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("journey_id", "step", name="uq_discount_codes_journey_step"),
)

conversions = Table(
    "conversions",
    metadata,
    # One row per order (idempotent on its id): credited to a recovery message (kind clicked or
    # sent_no_click), or placed by a holdout journey's shopper (kind holdout: the control group's orders).
    Column("order_id", String(128), primary_key=True),
    Column("cart_id", String(128), nullable=False),
    Column("journey_id", String(64), nullable=True),
    Column("message_id", String(200), nullable=True),
    Column("flow", String(128), nullable=False),
    Column("step", String(128), nullable=True),
    Column("channel", String(16), nullable=True),
    Column("template", String(128), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("model", String(16), nullable=False),
    Column("revenue", MONEY, nullable=False),
    # Refunds add up here; the revenue column keeps the order's value (net = max(revenue - refunded, 0)).
    Column("refunded", MONEY, nullable=False, default=0, server_default="0"),
    Column("currency", String(3), nullable=False),
    Column("holdout", Boolean, nullable=False, default=False),
    Column("ordered_at", TS, nullable=False),
    Column("time_to_convert_s", Float, nullable=True),
    Index("ix_conversions_journey", "journey_id"),
    Index("ix_conversions_cart", "cart_id"),
)

clicks = Table(
    "clicks",
    metadata,
    # One row per tracked-link hit. No IP address and no User-Agent string: only its coarse class
    # (mobile, desktop, bot, unknown); bot hits are kept for auditing but never count as a click.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(200), nullable=False),
    Column("journey_id", String(64), nullable=False),
    Column("cart_id", String(128), nullable=False),
    Column("clicked_at", TS, nullable=False),
    Column("user_agent_class", String(16), nullable=False),
    Index("ix_clicks_cart", "cart_id"),
    Index("ix_clicks_message", "message_id"),
)

short_links = Table(
    "short_links",
    metadata,
    # SMS links: a random code (render/short_links.py) standing for one message's tracked target; ``/s/{code}``
    # follows it as ``/r/`` follows a signed token, until ``expires_at``.
    Column("code", String(16), primary_key=True),
    Column("message_id", String(200), nullable=False),
    Column("journey_id", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Index("ix_short_links_message", "message_id"),
    Index("ix_short_links_journey", "journey_id"),
)

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

staff_sessions = Table(
    "sessions",
    metadata,
    # A person signed in to the pages. The cookie carries a random id; only its SHA-256 is kept here, so a
    # copy of the database cannot be replayed as cookies. ``token_hash`` is a keyed hash of the token used:
    # a session lives only while that token is still in ``security.api_tokens``.
    Column("id", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("name", String(160), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    Index("ix_sessions_token", "token_hash"),
)

inbound_sms = Table(
    "inbound_sms",
    metadata,
    # Each inbound SMS keyword is applied once per Twilio ``MessageSid``: a replayed STOP after a START
    # finds its sid here and changes nothing.
    Column("sms_sid", String(64), primary_key=True),
    Column("received_at", TS, nullable=False),
)
