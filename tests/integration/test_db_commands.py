"""``recovery db upgrade|current`` and ``recovery run`` refusing an old schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import Connection, inspect, text

from recovery.store.database import create_engine
from recovery.store.migrate import alembic_config, current_revision, ensure_schema_for_run, head_revision
from tests.commands import recovery


async def tables(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def downgrade_to_base(database_url: str) -> None:
    """A database an older release left behind: alembic has been there, this version's schema has not."""
    engine = create_engine(database_url)

    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    try:
        await ensure_schema_for_run(engine)
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
    finally:
        await engine.dispose()


async def test_db_upgrade_migrates_and_db_current_reports_the_revision(database_url: str, tmp_path: Path) -> None:
    head = head_revision()
    before = await recovery("db", "current", database_url=database_url, cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    assert f"none (behind: run `recovery db upgrade` (needs {head}))" in before.stdout

    upgraded = await recovery("db", "upgrade", database_url=database_url, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"database upgraded from empty to revision {head}" in upgraded.stdout
    assert {"carts", "messages", "alembic_version"} <= await tables(database_url)

    again = await recovery("db", "upgrade", database_url=database_url, cwd=tmp_path)
    assert f"database already at revision {head}" in again.stdout
    after = await recovery("db", "current", database_url=database_url, cwd=tmp_path)
    assert after.stdout.strip() == f"{head} (up to date)"


async def test_run_refuses_a_database_behind_the_code_until_db_upgrade(database_url: str, tmp_path: Path) -> None:
    await downgrade_to_base(database_url)
    refused = await recovery("run", database_url=database_url, cwd=tmp_path)
    assert refused.returncode == 1
    assert "run `recovery db upgrade` first" in " ".join(refused.stderr.split())
    assert "carts" not in await tables(database_url)  # `run` changed nothing

    assert (await recovery("db", "upgrade", database_url=database_url, cwd=tmp_path)).returncode == 0
    engine = create_engine(database_url)
    try:
        await ensure_schema_for_run(engine)  # what `run` checks first: now it passes
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_run_creates_the_schema_of_a_completely_empty_database(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) is None
        await ensure_schema_for_run(engine)
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()
    assert {"carts", "customers", "journeys", "steps", "messages"} <= await tables(database_url)


async def test_db_commands_report_an_unreachable_database_without_a_traceback(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    result = await recovery("db", "current", database_url=url, cwd=tmp_path)
    assert result.returncode == 1
    assert "error:" in result.stderr and "Traceback" not in result.stderr


async def test_run_accepts_a_schema_newer_than_the_code_after_a_rollback(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await ensure_schema_for_run(engine)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_a_newer_release'"))
        await ensure_schema_for_run(engine)  # no error: older code runs on the newer, additive schema
        assert await current_revision(engine) == "ffff_from_a_newer_release"
    finally:
        await engine.dispose()
