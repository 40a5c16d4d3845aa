"""Engine creation for SQLite (embedded default) and PostgreSQL, with driver errors wrapped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from recovery.errors import ConfigError

CONNECT_TIMEOUT_S = 10.0
STATEMENT_TIMEOUT_S = 30.0


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL and a busy timeout so the scheduler and ingest share it."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"database.url: cannot parse {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            if Path(database).is_dir():
                # Checked here: aiosqlite failing to open it would leave its thread behind the closed loop.
                raise ConfigError(f"database.url: {database} is a directory, not an SQLite database file")
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # SQLite has one writer: with several connections, concurrent transactions wait in SQLite's busy
        # handler, which sleeps in growing steps. One pooled connection makes them queue in Python instead.
        engine = create_async_engine(
            parsed,
            connect_args={"timeout": 30},
            pool_size=1,
            max_overflow=0,
            pool_timeout=120,
            hide_parameters=True,  # a failing statement must not log the shopper's email or phone
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            raise ConfigError("database.url: use the async driver, e.g. postgresql+asyncpg://user@host/db")
        # No await may hang forever: a dead server is noticed on checkout (pre-ping), at connect (10 s),
        # and a statement stuck behind a lost network is cancelled by the server and the client (30 s).
        return create_async_engine(
            parsed,
            pool_size=5,
            max_overflow=5,
            pool_pre_ping=True,
            pool_timeout=30,
            pool_recycle=1800,
            hide_parameters=True,  # a failing statement must not log the shopper's email or phone
            connect_args={
                "timeout": CONNECT_TIMEOUT_S,
                "command_timeout": STATEMENT_TIMEOUT_S,
                # asyncpg re-arms a 300 s expiry timer on every hit of its statement cache (executemany);
                # the timer keeps the context it was armed in, so each one held a whole Kafka batch (the
                # consumer's message lives in a context variable) in memory. 0 = entries never expire (the
                # cache stays bounded by its size), no timer, no batch kept.
                "max_cached_statement_lifetime": 0,
                "server_settings": {"statement_timeout": str(int(STATEMENT_TIMEOUT_S * 1000))},
            },
        )
    raise ConfigError(f"database.url: unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
