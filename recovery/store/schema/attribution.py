"""What came of the messages: clicks, short links, discount codes, conversions and feedback answers."""

from __future__ import annotations

from sqlalchemy import (
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
