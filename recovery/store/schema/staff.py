"""What staff keep: saved template and flow versions, and their page sessions."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from recovery.store.schema.columns import TS, metadata

# Marketers' saved template sources; the newest version of a path is live (the file is version 0).
template_versions = Table(
    "template_versions",
    metadata,
    Column("path", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("comment", Text, nullable=True),
)

# Marketers' saved flows (the YAML of one flow); the newest version of a name is live (the file is version 0).
flow_versions = Table(
    "flow_versions",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("comment", Text, nullable=True),
)

staff_sessions = Table(
    "sessions",
    metadata,
    # A person signed in to the pages. The cookie carries a random id; only its SHA-256 is kept here, so a
    # copy of the database cannot be replayed as cookies. ``token_hash`` is a keyed hash of the token used:
    # a session lives only while that token is still in ``security.api_tokens``.
    Column("id", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("name", String(160), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    Index("ix_sessions_token", "token_hash"),
)
