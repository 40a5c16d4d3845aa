"""Alembic environment: migrations run on the connection the service hands over (sync or async)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import create_engine

from recovery.store.schema import UtcDateTime, metadata

config = context.config


def _render_item(kind: str, obj: object, autogen_context: Any) -> str | Literal[False]:
    """Migrations name the schema's own types by the package's public path, wherever the module defining them."""
    if kind == "type" and isinstance(obj, UtcDateTime):
        autogen_context.imports.add("import recovery.store.schema")
        return f"recovery.store.schema.{obj!r}"
    return False  # everything else as Alembic renders it


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(str(config.get_main_option("sqlalchemy.url")))
    with engine.connect() as conn:
        _run(conn)
