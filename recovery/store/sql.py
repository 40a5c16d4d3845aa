"""Small dialect-aware building blocks: bulk upsert, insert-ignore, and chunked ``IN`` lists."""

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


async def upsert(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]], key: Sequence[str]) -> None:
    """Insert rows, replacing every non-key column of rows that already exist (one statement)."""
    if not rows:
        return
    statement = _insert(conn, table)
    columns = [name for name in rows[0] if name not in key]
    statement = statement.on_conflict_do_update(
        index_elements=list(key), set_={name: statement.excluded[name] for name in columns}
    )
    await conn.execute(statement, rows)


async def insert_ignore(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows, silently skipping those whose unique key already exists."""
    if rows:
        await conn.execute(_insert(conn, table).on_conflict_do_nothing(), rows)


async def insert_new_keys(conn: AsyncConnection, table: Table, column: str, keys: Sequence[str]) -> set[str]:
    """Insert keys; return those that were not there before (the first delivery of each)."""
    if not keys:
        return set()
    statement = _insert(conn, table).on_conflict_do_nothing().returning(table.c[column])
    result = await conn.execute(statement, [{column: key} for key in keys])
    return {row[0] for row in result}


def for_update_skip_locked(conn: AsyncConnection) -> dict[str, Any]:
    """``with_for_update`` arguments: row claims on PostgreSQL; SQLite has one writer anyway."""
    return {"skip_locked": True} if conn.dialect.name == "postgresql" else {}


async def insert_returning_new(conn: AsyncConnection, table: Table, key: str, rows: list[dict[str, Any]]) -> set[str]:
    """Insert rows, skipping existing keys; return the keys actually inserted."""
    if not rows:
        return set()
    statement = _insert(conn, table).on_conflict_do_nothing().returning(table.c[key])
    return {row[0] for row in await conn.execute(statement, rows)}
