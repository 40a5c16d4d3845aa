"""Shared fixtures: a real Kafka broker (bundled tansu unless KAFKA_BOOTSTRAP_SERVERS is set) and databases.

Store tests run on SQLite and PostgreSQL. PostgreSQL is at RECOVERY_TEST_POSTGRES_URL (default: the local
server); when it is unreachable its tests skip, unless RECOVERY_REQUIRE_POSTGRES=1 (CI) makes them fail.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head

POSTGRES_URL = os.environ.get("RECOVERY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("RECOVERY_REQUIRE_POSTGRES") == "1"


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Each test leaves the root logger as it found it: a CLI test run in-process configures logging onto the
    runner's captured stream, which is closed afterwards, and a later test's server threads (aiosmtpd) would
    log to it ("--- Logging error --- I/O operation on closed file" all over the run)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a real broker for the whole session."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = EmbeddedBroker(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


async def _postgres_reachable() -> bool:
    engine = create_async_engine(POSTGRES_URL)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("select 1"))
        return True
    except Exception:
        return False
    finally:
        await engine.dispose()


async def create_postgres_database() -> str:
    """A fresh, empty PostgreSQL database; returns its URL."""
    if not await _postgres_reachable():
        message = f"PostgreSQL unreachable at {POSTGRES_URL}"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " (RECOVERY_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    name = f"recovery_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    """Drop a database made by ``create_postgres_database``."""
    name = make_url(url).database
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'recovery.db'}"
        return
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """An empty PostgreSQL database (for multi-process tests)."""
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@asynccontextmanager
async def migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``url`` with the schema at head, disposed on the way out."""
    engine = create_engine(url)
    await upgrade_to_head(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def postgres_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on a fresh PostgreSQL database."""
    async with migrated_engine(postgres_url) as engine:
        yield engine


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on each database."""
    async with migrated_engine(database_url) as engine:
        yield engine
