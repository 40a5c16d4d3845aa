"""Money read from the store: exact cents on both databases, and refunds netted in SQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, func

CENT = Decimal("0.01")


def money(value: Any) -> Decimal:
    """An amount or a sum read from either database, in exact cents (SQLite sums NUMERIC as floats)."""
    if value is None:
        return Decimal("0.00")
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return amount.quantize(CENT)


def money_text(amount: Decimal | None) -> str | None:
    """``Decimal("129.9")`` → ``"129.90"``: how amounts travel in JSON, as shop platforms send them."""
    return None if amount is None else str(amount.quantize(CENT))


def net_of_refunds(value: Any, refunded: Any) -> ColumnElement[Any]:
    """SQL for a value less its refunds, never below zero (``attribution.apply_refund`` in the database)."""
    refunds = func.coalesce(refunded, 0)
    return case((value > refunds, value - refunds), else_=0)
