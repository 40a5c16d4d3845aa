"""Server-side sessions of the pages: one row per sign-in, revoked by logout; queries only.

The cookie carries a random id; the row is found by its SHA-256, so the table alone opens no session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.store.schema import staff_sessions

_ID_BYTES = 32  # 256 random bits per session


@dataclass(frozen=True, kw_only=True)
class SessionRow:
    """A live session: who signed in, with which token (its keyed hash), until when."""

    token_hash: str
    name: str
    role: str
    expires_at: datetime


def _row_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def open_session(
    engine: AsyncEngine, *, token_hash: str, name: str, role: str, now: datetime, lifetime: timedelta
) -> str:
    """A new session (a fresh random id, whatever the time), forgetting the expired ones; returns its id."""
    session_id = secrets.token_urlsafe(_ID_BYTES)
    async with engine.begin() as conn:
        await conn.execute(delete(staff_sessions).where(staff_sessions.c.expires_at < now))
        await conn.execute(
            staff_sessions.insert().values(
                id=_row_id(session_id),
                token_hash=token_hash,
                name=name[:160],
                role=role,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return session_id


async def find_session(engine: AsyncEngine, session_id: str, *, now: datetime) -> SessionRow | None:
    """The session with this id, unless it is unknown, expired or revoked."""
    query = select(
        staff_sessions.c.token_hash, staff_sessions.c.name, staff_sessions.c.role, staff_sessions.c.expires_at
    ).where(
        staff_sessions.c.id == _row_id(session_id),
        staff_sessions.c.revoked_at.is_(None),
        staff_sessions.c.expires_at > now,
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return None if row is None else SessionRow(**row)


async def revoke_session(engine: AsyncEngine, session_id: str, *, now: datetime) -> bool:
    """End a session at once (logout); whether it was live."""
    statement = (
        update(staff_sessions)
        .where(staff_sessions.c.id == _row_id(session_id), staff_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    async with engine.begin() as conn:
        return (await conn.execute(statement)).rowcount > 0
