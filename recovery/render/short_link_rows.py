"""The ``short_links`` table's queries: store a message's short links, find a live one by its code."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.render.short_links import LINK_MAX_AGE, ShortLink, is_code
from recovery.render.signed_links import TrackedLink
from recovery.store.schema import short_links


async def store_links(conn: AsyncConnection, links: Sequence[ShortLink], now: datetime) -> None:
    """Insert ``links``, each expiring ``LINK_MAX_AGE`` from ``now`` like the message's signed links."""
    if not links:
        return
    await conn.execute(
        short_links.insert(),
        [
            {
                "code": link.code,
                "message_id": link.message_id,
                "journey_id": link.journey_id,
                "target": link.target,
                "created_at": now,
                "expires_at": now + LINK_MAX_AGE,
            }
            for link in links
        ],
    )


async def find_link(conn: AsyncConnection, code: str, now: datetime) -> TrackedLink | None:
    """The tracked link behind ``code``; None when it does not exist or has expired."""
    if not is_code(code):
        return None
    row = (
        await conn.execute(
            select(short_links.c.message_id, short_links.c.target, short_links.c.expires_at).where(
                short_links.c.code == code
            )
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    return TrackedLink(message_id=row.message_id, target=row.target)
