"""What ``/metrics`` reads from the database at scrape time: messages by state and expired callback claims."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.desk.claim_rows import expired_claims_total
from recovery.store.schema import messages


@dataclass(frozen=True, kw_only=True)
class StoredGauges:
    """Counts a scrape publishes: messages per state value, and the claims that ran out since the start."""

    messages_by_state: dict[str, int]
    claims_expired: int


async def read_gauges(engine: AsyncEngine) -> StoredGauges:
    """One read of both figures."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(messages.c.state, func.count()).group_by(messages.c.state))
        counts = {state: int(count) for state, count in rows}
        return StoredGauges(messages_by_state=counts, claims_expired=await expired_claims_total(conn))
