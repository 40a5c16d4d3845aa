"""Discount codes: one per journey step with an offer, created once and reused on every retry."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.steps.discounts import DiscountCode, new_discount_code
from recovery.store.schema import discount_codes
from recovery.store.sql import insert_ignore


async def code_for(
    conn: AsyncConnection,
    *,
    journey_id: str,
    step: str,
    percent: int,
    valid_for: timedelta,
    now: datetime,
    free_shipping: bool = False,
) -> DiscountCode:
    """The step's code, created on first use."""
    fresh = new_discount_code(journey_id, percent, valid_for, now, free_shipping=free_shipping)
    await insert_ignore(
        conn,
        discount_codes,
        [
            {
                "code": fresh.code,
                "journey_id": journey_id,
                "step": step,
                "percent": fresh.percent,
                "free_shipping": fresh.free_shipping,
                "expires_at": fresh.expires_at,
                "created_at": now,
            }
        ],
    )
    row = (
        (
            await conn.execute(
                select(
                    discount_codes.c.code,
                    discount_codes.c.percent,
                    discount_codes.c.expires_at,
                    discount_codes.c.free_shipping,
                ).where(discount_codes.c.journey_id == journey_id, discount_codes.c.step == step)
            )
        )
        .mappings()
        .one()
    )
    return DiscountCode(
        code=row["code"],
        percent=row["percent"],
        expires_at=row["expires_at"],
        journey_id=journey_id,
        free_shipping=bool(row["free_shipping"]),
    )
