"""Small dialect-aware building blocks: insert-ignore, insert-returning-new, and chunked ``IN`` lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

CHUNK = 2000  # parameters per IN list: well under SQLite's and asyncpg's limits


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert(conn: AsyncConnection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


async def insert_ignore(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows, silently skipping those whose unique key already exists."""
    if rows:
        await conn.execute(_insert(conn, table).on_conflict_do_nothing(), rows)


def for_update_skip_locked(conn: AsyncConnection) -> dict[str, Any]:
    """``with_for_update`` arguments: row claims on PostgreSQL; SQLite has one writer anyway."""
    return {"skip_locked": True} if conn.dialect.name == "postgresql" else {}


async def insert_returning_new(conn: AsyncConnection, table: Table, key: str, rows: list[dict[str, Any]]) -> set[str]:
    """Insert rows, skipping existing keys; return the keys actually inserted."""
    if not rows:
        return set()
    statement = _insert(conn, table).on_conflict_do_nothing().returning(table.c[key])
    return {row[0] for row in await conn.execute(statement, rows)}
