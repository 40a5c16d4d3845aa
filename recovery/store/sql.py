"""The one home for dialect-aware statements: insert-ignore, insert-returning-new, upserts, chunked and
single-parameter ``IN`` lists, row claims.

The set-based writes for ingest (``upsert_rows``, ``insert_new_keys``, ``among``) make one statement per batch
and table, values bound column by column: SQLAlchemy's per-row parameter handling cost more than the database
itself at ingest volumes, so they build the SQL once per table and apply the columns' own bind processors (the
same conversions the Core statements make) to plain tuples. PostgreSQL gets one ``unnest`` of an array of
composite rows where the table has a row type for those columns (``schema/row_types.py``), else of column
arrays; SQLite one ``executemany``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    BindParameter,
    ColumnElement,
    Dialect,
    Select,
    String,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, asyncpg
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from recovery.store.schema.columns import UtcDateTime
from recovery.store.schema.row_types import ROW_TYPES

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


_upserts: dict[tuple[str, str, tuple[str, ...]], Any] = {}


async def upsert(conn: AsyncConnection, table: Table, key: str, update: Sequence[str], row: dict[str, Any]) -> None:
    """Insert ``row``, or set its ``update`` columns on the row with the same ``key`` (one statement, cached)."""
    cache_key = (conn.dialect.name, table.name, tuple(update))
    statement = _upserts.get(cache_key)
    if statement is None:
        insert = _insert(conn, table)
        statement = insert.on_conflict_do_update(
            index_elements=[table.c[key]], set_={name: insert.excluded[name] for name in update}
        )
        _upserts[cache_key] = statement
    await conn.execute(statement, row)


Processor = Callable[[Any], Any] | None


class JsonText(str):
    """A value already serialized to JSON text: written as it is, never encoded again."""

    __slots__ = ()


@cache
def _processors(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[Processor, ...]:
    return tuple(_processor(table.c[name].type, dialect) for name in columns)


def _processor(kind: Any, dialect: Dialect) -> Processor:
    if isinstance(kind, UtcDateTime) and dialect.name == "postgresql":
        return _AWARE_AS_IS  # asyncpg turns any aware time into the UTC instant itself (``_aware``)
    if isinstance(kind, UtcDateTime) and dialect.name == "sqlite":
        text_format = getattr(kind.impl_instance.dialect_impl(dialect), "_storage_format", None)
        if text_format == _SQLITE_DATETIME_FORMAT:
            return _SQLITE_UTC_TEXT  # the same text, a column at a time (``_sqlite_utc_texts``)
    processor: Processor = kind.dialect_impl(dialect).bind_processor(dialect)
    return processor


# SQLAlchemy's SQLite DATETIME text, which ``isoformat(" ", "microseconds")`` of a naive datetime spells alike.
_SQLITE_DATETIME_FORMAT = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"


def _aware(values: list[Any]) -> list[Any]:
    """``UtcDateTime``'s refusal of naive times, a column at a time; aware times are passed on as they are."""
    if any(v is not None and v.tzinfo is None for v in values):
        raise ValueError("naive datetime given to the store: pass timezone-aware UTC times")
    return values


def _sqlite_utc_texts(values: list[Any]) -> list[Any]:
    """``UtcDateTime`` then SQLite's DATETIME bind conversion, inline: through SQLAlchemy's two processors a
    timestamp cost 4.6 µs (2.0 here), three a cart row, ~10 % of ingest's CPU on SQLite."""
    return [
        None
        if v is None
        else (v if v.tzinfo is UTC else v.astimezone(UTC)).replace(tzinfo=None).isoformat(" ", "microseconds")
        for v in _aware(values)
    ]


def _sqlite_utc_marker(value: Any) -> Any:  # identity only: ``_bound`` converts these columns itself
    raise AssertionError("converted by _sqlite_utc_texts")


def _aware_marker(value: Any) -> Any:  # identity only: ``_bound`` checks these columns itself
    raise AssertionError("checked by _aware")


_SQLITE_UTC_TEXT: Processor = _sqlite_utc_marker
_AWARE_AS_IS: Processor = _aware_marker


@cache
def _upsert_sql(table: Table, columns: tuple[str, ...], key: tuple[str, ...], keep: frozenset[str], pg: bool) -> str:
    # ``keep`` columns are only ever replaced, never cleared: NULL means "leave the stored value".
    names = ", ".join(columns)
    updates = ", ".join(
        f"{name} = COALESCE(excluded.{name}, {table.name}.{name})" if name in keep else f"{name} = excluded.{name}"
        for name in columns
        if name not in key
    )
    conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}" if updates else "ON CONFLICT DO NOTHING"
    if not pg:
        return f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' for _ in columns)}) {conflict}"
    source = _unnest_rows(table, columns) if _has_row_type(table, columns) else _unnest(table, columns)
    return f"INSERT INTO {table.name} ({names}) {source} {conflict}"


def _has_row_type(table: Table, columns: tuple[str, ...]) -> bool:
    """Whether ``table`` has a composite row type of exactly these columns (one array parameter of rows)."""
    row_type = ROW_TYPES.get(table.name)
    return row_type is not None and row_type.columns == columns


def _unnest_rows(table: Table, columns: tuple[str, ...]) -> str:
    """``SELECT`` over one array of the table's row type (JSON travels as text and is cast back)."""
    selected = ", ".join(f"u.{name}::json" if isinstance(table.c[name].type, JSON) else f"u.{name}" for name in columns)
    return f"SELECT {selected} FROM unnest($1::{ROW_TYPES[table.name].name}[]) AS u"


def _unnest(table: Table, columns: tuple[str, ...]) -> str:
    """``SELECT`` over one array parameter per column (JSON travels as text and is cast back)."""
    arrays, selected = [], []
    for position, name in enumerate(columns, start=1):
        kind = table.c[name].type
        if isinstance(kind, JSON):
            arrays.append(f"${position}::text[]")
            selected.append(f"u.{name}::json")
        else:
            arrays.append(f"${position}::{_pg_type(kind)}[]")
            selected.append(f"u.{name}")
    return f"SELECT {', '.join(selected)} FROM unnest({', '.join(arrays)}) AS u({', '.join(columns)})"


_PG = asyncpg.dialect()  # type: ignore[no-untyped-call]  # only to spell column types


def _pg_type(kind: Any) -> str:
    compiled: str = kind.compile(dialect=_PG)
    return compiled


def _bound(
    rows: Sequence[Sequence[Any]],
    processors: tuple[Processor, ...],
    table: Table,
    columns: tuple[str, ...],
    keep: frozenset[str],
) -> list[list[Any]]:
    """The rows' values column by column, converted as SQLAlchemy would (JSON text passes through).

    A ``keep`` column's None stays SQL NULL (so the stored value stays); elsewhere a JSON None is
    written as SQLAlchemy writes it, JSON ``null``.
    """
    out: list[list[Any]] = []
    for index, (name, process) in enumerate(zip(columns, processors, strict=True)):
        values = [row[index] for row in rows]
        if process is _SQLITE_UTC_TEXT:
            values = _sqlite_utc_texts(values)
        elif process is _AWARE_AS_IS:
            values = _aware(values)
        elif process is not None:
            convert = _converter(process, json=isinstance(table.c[name].type, JSON), kept=name in keep)
            values = [convert(v) for v in values]
        out.append(values)
    return out


def _bound_rows(
    rows: Sequence[Sequence[Any]],
    processors: tuple[Processor, ...],
    table: Table,
    columns: tuple[str, ...],
    keep: frozenset[str],
) -> list[tuple[Any, ...]]:
    """``_bound``'s conversions, row by row, for one array of composite rows: tuples (asyncpg reads a list as
    a sub-array), each rebuilt only where a column has a conversion (on PostgreSQL: JSON and booleans)."""
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for index, (name, process) in enumerate(zip(columns, processors, strict=True)):
        if process is _AWARE_AS_IS:
            _aware([row[index] for row in rows])
        elif process is not None:
            json_column = isinstance(table.c[name].type, JSON)
            converters.append((index, _converter(process, json=json_column, kept=name in keep)))
    if not converters:
        return [tuple(row) for row in rows]
    out: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(row)
        for index, convert in converters:
            values[index] = convert(values[index])
        out.append(tuple(values))
    return out


def _converter(process: Processor, *, json: bool, kept: bool) -> Callable[[Any], Any]:
    """One value's conversion in ``_bound`` and ``_bound_rows``: JSON text passes through, a kept document's
    None stays NULL (another JSON None is written as SQLAlchemy writes it, JSON ``null``)."""
    assert process is not None, "SQLAlchemy's JSON type always serializes"
    if not json:
        return lambda value: None if value is None else process(value)
    if kept:
        return lambda value: value if value is None or isinstance(value, JsonText) else process(value)
    return lambda value: value if isinstance(value, JsonText) else process(value)


async def upsert_rows(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    key: Sequence[str],
    keep: frozenset[str] = frozenset(),
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) or update the existing ones, in one statement."""
    if not rows:
        return
    names, pg = tuple(columns), conn.dialect.name == "postgresql"
    sql = _upsert_sql(table, names, tuple(key), keep, pg)
    processors = _processors(table, names, conn.dialect)
    parameters: Any
    try:
        if pg and _has_row_type(table, names):
            parameters = (_bound_rows(rows, processors, table, names, keep),)
        elif pg:
            parameters = tuple(_bound(rows, processors, table, names, keep))
        else:
            parameters = list(zip(*_bound(rows, processors, table, names, keep), strict=True))
    except (TypeError, ValueError) as exc:  # as SQLAlchemy reports a value its type refuses (no values shown)
        raise StatementError(f"({type(exc).__name__}) {exc}", sql, None, exc) from exc
    await conn.exec_driver_sql(sql, parameters)


async def insert_rows(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], *, returning: str | None = None
) -> set[Any]:
    """Insert rows that all name the same columns, skipping those whose unique key already exists; return the
    ``returning`` column's values of the rows inserted (empty without it).

    On PostgreSQL one ``unnest`` statement whatever the number of rows: a Core insert of many rows renders one
    ``VALUES`` list with a parameter per value, a new statement text (and server-side plan) for each count.
    Columns a row leaves out get their scalar defaults, as a Core insert gives them.
    """
    if not rows:
        return set()
    keys = rows[0].keys()
    if any(row.keys() != keys for row in rows):
        raise ValueError(f"insert_rows: the rows for {table.name} do not all name the same columns")
    if conn.dialect.name != "postgresql":
        if returning is None:
            await insert_ignore(conn, table, [dict(row) for row in rows])
            return set()
        return await insert_returning_new(conn, table, returning, [dict(row) for row in rows])
    named = tuple(keys)
    defaults = _scalar_defaults(table, named)
    columns = (*named, *defaults)
    values = [(*(row[name] for name in named), *defaults.values()) for row in rows]
    sql = _insert_rows_sql(table, columns, returning)
    try:
        parameters = tuple(_bound(values, _processors(table, columns, conn.dialect), table, columns, frozenset()))
    except (TypeError, ValueError) as exc:  # as SQLAlchemy reports a value its type refuses (no values shown)
        raise StatementError(f"({type(exc).__name__}) {exc}", sql, None, exc) from exc
    result = await conn.exec_driver_sql(sql, parameters)
    return set() if returning is None else {row[0] for row in result}


@cache
def _scalar_defaults(table: Table, named: tuple[str, ...]) -> dict[str, Any]:
    return {
        column.name: column.default.arg
        for column in table.columns
        if column.name not in named and isinstance(column.default, ScalarElementColumnDefault)
    }


@cache
def _insert_rows_sql(table: Table, columns: tuple[str, ...], returning: str | None) -> str:
    tail = f" RETURNING {returning}" if returning else ""
    return f"INSERT INTO {table.name} ({', '.join(columns)}) {_unnest(table, columns)} ON CONFLICT DO NOTHING{tail}"


async def insert_new_keys(conn: AsyncConnection, table: Table, column: str, keys: Sequence[str]) -> set[str]:
    """Insert keys, skipping those already there; return the ones inserted (one statement per 2 000)."""
    new: set[str] = set()
    pg = conn.dialect.name == "postgresql"
    for part in chunks(keys):
        if pg:
            sql = (
                f"INSERT INTO {table.name} ({column}) SELECT unnest($1::text[]) "
                f"ON CONFLICT DO NOTHING RETURNING {column}"
            )
            result = await conn.exec_driver_sql(sql, (list(part),))
        else:
            values = ", ".join("(?)" for _ in part)
            sql = f"INSERT INTO {table.name} ({column}) VALUES {values} ON CONFLICT DO NOTHING RETURNING {column}"
            result = await conn.exec_driver_sql(sql, tuple(part))
        new.update(row[0] for row in result)
    return new


@cache
def _select_any_sql(table: Table, columns: tuple[str, ...], key: str) -> str:
    return f"SELECT {', '.join(columns)} FROM {table.name} WHERE {key} = ANY($1::text[])"


async def rows_among(
    conn: AsyncConnection, table: Table, columns: Sequence[str], key: str, values: Sequence[str]
) -> Sequence[Sequence[Any]]:
    """``columns`` of the rows whose ``key`` is among ``values``, as tuples with the columns' Python values.

    On PostgreSQL one driver-level statement: asyncpg already returns what the column types would (aware
    UTC datetimes, Decimals, str, bool, int), so SQLAlchemy's per-value result processing (a fifth of the
    ingest reads' CPU) is skipped. JSON columns come back from the driver as text: those go through SQLAlchemy.
    """
    names = tuple(columns)
    if conn.dialect.name == "postgresql" and not any(isinstance(table.c[name].type, JSON) for name in names):
        result = await conn.exec_driver_sql(_select_any_sql(table, names, key), (list(values),))
        return result.all()
    query = select(*[table.c[name] for name in names]).where(among(conn, table.c[key], values))
    return (await conn.execute(query)).all()


def among(conn: AsyncConnection, column: ColumnElement[str], values: Sequence[str]) -> ColumnElement[bool]:
    """``column IN values`` with the whole list as one parameter, so the statement compiles once.

    A plain ``in_`` renders one parameter per value on every execution, which cost more than the query.
    """
    dialect = conn.dialect.name
    return _among(dialect, column, bindparam("among", list_value(dialect, values), type_=_list_type(dialect)))


def among_param(dialect: str, column: ColumnElement[str], name: str) -> ColumnElement[bool]:
    """``among`` for a statement built once: the list is the parameter ``name``, given at each execution as
    ``list_value(dialect, values)``."""
    return _among(dialect, column, bindparam(name, type_=_list_type(dialect)))


def list_value(dialect: str, values: Sequence[str]) -> Any:
    """The value of an ``among`` list parameter: an array on PostgreSQL, JSON text for SQLite's json_each."""
    return list(values) if dialect == "postgresql" else json.dumps(list(values))


def _list_type(dialect: str) -> Any:
    return ARRAY(String) if dialect == "postgresql" else None


def _among(dialect: str, column: ColumnElement[str], listed: BindParameter[Any]) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return column == any_(listed)
    values: Select[Any] = select(literal_column("value")).select_from(func.json_each(listed))
    return column.in_(values.scalar_subquery())
