"""Database schema versions with alembic: upgrade to head, read the revision, refuse an old schema."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.errors import RecoveryError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An alembic Config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


MIGRATION_LOCK = 7_305_301  # any constant: replicas starting together migrate one at a time


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Apply every pending migration (on PostgreSQL under an advisory lock, so replicas don't race)."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await connection.run_sync(_upgrade)


class SchemaBehind(RecoveryError):
    """The database's schema is not the one this version of the code needs."""


def head_revision() -> str:
    """The revision this version of the code needs."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    return heads[0]


def _known(revision: str) -> bool:
    """Whether this version's migrations contain ``revision``."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def _state(connection: Connection) -> tuple[str | None, bool]:
    """The database's alembic revision, and whether it holds any table at all."""
    revision = MigrationContext.configure(connection).get_current_revision()
    return revision, bool(inspect(connection).get_table_names())


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    async with engine.connect() as connection:
        revision, _ = await connection.run_sync(_state)
    return revision


async def ensure_schema_for_run(engine: AsyncEngine) -> None:
    """Refuse to run on an old schema; create the schema on a completely empty database.

    Only ``recovery db upgrade`` changes an existing schema (a Helm hook runs it before pods change), so
    a replica of new code never migrates under old ones. An empty database has nothing to break: creating
    its schema lets the service start on a fresh database with the documented commands alone.
    """
    async with engine.connect() as connection:
        revision, has_tables = await connection.run_sync(_state)
    head = head_revision()
    if revision == head:
        return
    if revision is None and not has_tables:
        log.info("empty database: creating the schema", extra={"revision": head})
        await upgrade_to_head(engine)
        return
    if revision is not None and not _known(revision):
        # Written by a newer release: this is a rollback. Migrations add, so the older code still works.
        log.warning("database schema is newer than this version; running anyway", extra={"revision": revision})
        return
    raise SchemaBehind(
        f"the database schema is at revision {revision or 'none'}, this version needs {head}: "
        "run `recovery db upgrade` first"
    )


async def require_current_schema(engine: AsyncEngine) -> None:
    """Raise ``SchemaBehind`` unless the database is at this version's revision (or a newer, known-compatible one).

    For commands that only read (``recovery report``): they never change the schema, ``recovery db upgrade`` does.
    """
    async with engine.connect() as connection:
        revision, _ = await connection.run_sync(_state)
    head = head_revision()
    if revision == head or (revision is not None and not _known(revision)):
        return
    raise SchemaBehind(
        f"the database schema is at revision {revision or 'none (never migrated)'}, this version needs {head}: "
        "run `recovery db upgrade` first (this command only reads)"
    )
