"""Engine creation for SQLite (embedded default) and PostgreSQL, with driver errors wrapped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from recovery.backoff import Backoff, wait_first
from recovery.errors import ConfigError

CONNECT_TIMEOUT_S = 10.0
STATEMENT_TIMEOUT_S = 30.0
DEFAULT_SENDERS = 64
# A step due this soon after its creation wakes the schedulers instead of waiting for their next poll.
DUE_SOON = timedelta(seconds=1)
DUE_CHANNEL = "recovery_due"
_DUE_FLAG = "recovery_due"


def pool_size_for(senders: int) -> tuple[int, int]:
    """PostgreSQL pool size and overflow for ``senders`` concurrent sends.

    A send holds a connection only for its two short transactions around the provider call (a few ms out of
    ~100 ms), so about one connection per eight senders, plus the ingest, heartbeat, relay, claimer and the
    LISTEN connection; bounded, since every replica's pool counts against the server's max_connections.
    """
    base = 6 + max(senders, 1) // 8
    return min(base, 40), min(base, 40)


def create_engine(
    url: str, *, senders: int = DEFAULT_SENDERS, pool_size: int | None = None, max_overflow: int | None = None
) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL and a busy timeout so the scheduler and ingest share it.

    ``senders`` (``channels.concurrency``) sizes the PostgreSQL pool unless ``pool_size`` / ``max_overflow``
    (``database.*``) set it.
    """
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
        # No await may hang forever: a dead server is noticed at connect (10 s), and a statement stuck behind
        # a lost network is cancelled by the server and the client (30 s). No pre-ping: it cost three round
        # trips (BEGIN, a query, ROLLBACK) per checkout, two checkouts per message (issue 25). A connection the
        # server dropped fails its first statement instead, as a disconnect: SQLAlchemy then invalidates the
        # pool's older connections, and the caller's outage handling retries (a claimed step keeps its claim
        # and is fired again; a ``sending`` message is reconciled with the provider first).
        computed_size, computed_overflow = pool_size_for(senders)
        return create_async_engine(
            parsed,
            pool_size=computed_size if pool_size is None else pool_size,
            max_overflow=computed_overflow if max_overflow is None else max_overflow,
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


async def signal_due(conn: AsyncConnection, due_at: Iterable[Any], now: datetime) -> None:
    """Wake the schedulers after this transaction commits when a step falls due within ``DUE_SOON``.

    In this process through the pool's check-in (after commit); on PostgreSQL also ``NOTIFY``, which the
    server delivers to every replica's listener only if the transaction commits.
    """
    if not any(at <= now + DUE_SOON for at in due_at):
        return
    conn.info[_DUE_FLAG] = True
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": DUE_CHANNEL})


def on_due(engine: AsyncEngine, wake: Callable[[], None]) -> Callable[[], None]:
    """Call ``wake`` (in the event loop) whenever a connection of ``engine`` that signalled a due step is
    returned to the pool; returns the function that stops it."""
    loop = asyncio.get_running_loop()

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop(_DUE_FLAG, False):
            loop.call_soon_threadsafe(wake)

    event.listen(engine.sync_engine, "checkin", checkin)
    return lambda: event.remove(engine.sync_engine, "checkin", checkin)


async def listen_due(engine: AsyncEngine, wake: Callable[[], None], stop: asyncio.Event) -> None:
    """On PostgreSQL, ``LISTEN`` for due steps created by any replica until ``stop``; elsewhere return at once.

    A lost listening connection is opened again; meanwhile the poll interval still finds every due step.
    """
    if engine.dialect.name != "postgresql":
        return
    backoff = Backoff("due-step listener (database)")
    while not stop.is_set():
        try:
            await _listen_once(engine, wake, stop)
        except Exception as exc:  # an outage: the poll keeps working, listening resumes later
            await backoff.wait(exc, stop)
            continue
        backoff.succeeded()


async def _listen_once(engine: AsyncEngine, wake: Callable[[], None], stop: asyncio.Event) -> None:
    """Listen on one connection until ``stop`` or until the connection is lost."""
    lost = asyncio.Event()
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        try:
            await raw.add_listener(DUE_CHANNEL, lambda *_args: wake())
            raw.add_termination_listener(lambda *_args: lost.set())
            wake()  # anything created while no one listened
            await wait_first(stop, lost)
        finally:
            # Never hand a connection still listening back to the pool.
            await conn.invalidate()


async def ping(engine: AsyncEngine) -> bool:
    """True when the database answers a trivial query (``/readyz``); the driver's error otherwise."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True
