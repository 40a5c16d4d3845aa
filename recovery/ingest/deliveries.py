"""Platform webhook deliveries already handled: a redelivery (even after a restart) is not published again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.store.schema import webhook_deliveries
from recovery.store.sql import insert_returning_new


async def first_delivery(conn: AsyncConnection, *, platform: str, delivery_id: str, now: datetime) -> bool:
    """Record the delivery; ``False`` when it was recorded before (a duplicate).

    Called inside the transaction that publishes it: a failed publish rolls the record back, so the
    platform's retry is published instead of being taken for a duplicate.
    """
    row = {"platform": platform, "delivery_id": delivery_id[:128], "received_at": now}
    inserted = await insert_returning_new(conn, webhook_deliveries, "delivery_id", [row])
    return bool(inserted)
