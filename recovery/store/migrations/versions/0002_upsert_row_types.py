"""composite row types for ingest's upserts (PostgreSQL only)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 15:55:00

The fields are the tables' own columns and types (JSON as text): see recovery/store/schema/row_types.py.
SQLite has no such types and needs none (its upserts are an executemany).
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TYPE carts_upsert_row AS ("
        "cart_id varchar(128), store varchar(128), customer_key varchar(160), cart text, value numeric(14, 2),"
        " currency varchar(3), item_count integer, checkout_step varchar(16), payment text,"
        " first_event_at timestamptz, last_event_at timestamptz, abandon_at timestamptz, abandoned_at timestamptz,"
        " ordered_at timestamptz, order_id varchar(128), order_value numeric(14, 2), refunded_value numeric(14, 2))"
    )
    op.execute(
        "CREATE TYPE customers_upsert_row AS ("
        "customer_key varchar(160), email varchar(320), phone varchar(32), first_name varchar(200),"
        " locale varchar(35), timezone varchar(64), consent_email boolean, consent_sms boolean,"
        " consent_phone boolean, updated_at timestamptz)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TYPE IF EXISTS customers_upsert_row")
    op.execute("DROP TYPE IF EXISTS carts_upsert_row")
