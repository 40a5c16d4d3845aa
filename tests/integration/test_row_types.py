"""Ingest's composite row types on PostgreSQL: they match their tables, and upserts through them keep values."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.journeys.records import CART_FIELDS, CUSTOMER_FIELDS
from recovery.store.schema import carts, customers
from recovery.store.schema.row_types import CART_ROW, CUSTOMER_ROW, ROW_TYPES
from recovery.store.sql import JsonText, upsert_rows

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


FIELDS = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
    " WHERE a.attrelid = (SELECT typrelid FROM pg_type WHERE typname = :name) AND a.attnum > 0 AND NOT a.attisdropped"
    " ORDER BY a.attnum"
)


async def test_each_row_type_has_its_tables_columns_and_types_in_order(postgres_engine: AsyncEngine) -> None:
    async with postgres_engine.connect() as conn:
        for row_type in ROW_TYPES.values():
            table: dict[str, str] = dict((await conn.execute(text(FIELDS), {"name": row_type.table})).all())
            fields = (await conn.execute(text(FIELDS), {"name": row_type.name})).all()
            # JSON columns travel as text; everything else has the column's own type.
            wanted = [(name, "text" if table[name] == "json" else table[name]) for name in row_type.columns]
            assert [tuple(field) for field in fields] == wanted, row_type.name


def test_the_row_types_are_the_columns_ingest_writes() -> None:
    assert CART_ROW.columns == CART_FIELDS
    assert CUSTOMER_ROW.columns == CUSTOMER_FIELDS


async def test_a_write_of_other_columns_falls_back_to_column_arrays(postgres_engine: AsyncEngine) -> None:
    async with postgres_engine.begin() as conn:
        await upsert_rows(conn, customers, ["customer_key", "updated_at"], [("k1", NOW)], key=["customer_key"])
        await upsert_rows(conn, customers, ["customer_key", "updated_at"], [("k1", NOW)], key=["customer_key"])
        assert (await conn.execute(select(customers.c.customer_key, customers.c.updated_at))).all() == [("k1", NOW)]


async def test_an_upsert_through_the_row_type_converts_as_the_columns_do(postgres_engine: AsyncEngine) -> None:
    """JSON text passes as it is, a document is serialized, a kept document's None leaves the stored one."""
    row = dict.fromkeys(CART_FIELDS)
    row |= {"cart_id": "c1", "store": "fr", "customer_key": "k1", "item_count": 1, "value": Decimal("10.50")}
    row |= {"first_event_at": NOW, "last_event_at": NOW, "cart": JsonText('{"value": "10.50"}')}
    row |= {"payment": {"reason": "card_declined"}}
    async with postgres_engine.begin() as conn:
        await upsert_rows(
            conn, carts, CART_FIELDS, [tuple(row.values())], key=["cart_id"], keep=frozenset({"cart", "payment"})
        )
        again = row | {"cart": None, "payment": None, "value": Decimal("12.00")}
        await upsert_rows(
            conn, carts, CART_FIELDS, [tuple(again.values())], key=["cart_id"], keep=frozenset({"cart", "payment"})
        )
        stored = (await conn.execute(select(carts.c.cart, carts.c.payment, carts.c.value))).one()
    assert stored == ({"value": "10.50"}, {"reason": "card_declined"}, Decimal("12.00"))
