"""Poison versus outage in ingest: decode each record alone, and find the record a database refuses.

A failure that belongs to one record dead-letters that record and the rest of the batch goes on; a
failure of the environment propagates, so the caller retries the whole batch later without acking.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.backoff import is_outage
from recovery.events import Event, Rejection, parse_event

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def decode_record(value: bytes | None, *, max_bytes: int) -> Event | Rejection:
    """Decode one record's bytes; any failure (size, JSON, nesting, validation) becomes a ``Rejection``."""
    if value is not None and len(value) > max_bytes:
        return Rejection(reason=f"event is {len(value)} bytes, above ingest.max_event_bytes ({max_bytes})")
    try:
        return parse_event(value)
    except RecursionError:
        return Rejection(reason="not JSON: nested too deeply")
    except Exception as exc:  # a decoder bug must cost one record, never the batch
        return Rejection(reason=f"cannot decode: {type(exc).__name__}")


def refusal_reason(exc: BaseException) -> str:
    """A dead-letter reason for a database refusal: the driver's error class only (values stay out)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    driver = getattr(cause, "__cause__", None) or cause
    return f"the database refused the event's values: {type(driver).__name__}"


@dataclass(frozen=True)
class Isolated(Generic[T, R]):
    """What applying a batch piece by piece did: the results of the pieces that went in, and the refused."""

    results: list[R]
    refused: list[tuple[T, str]]


async def apply_isolating(
    items: Sequence[T],
    apply: Callable[[Sequence[T]], Awaitable[R]],
    *,
    engine: AsyncEngine,
) -> Isolated[T, R]:
    """Apply ``items``; on a refusal that retrying cannot fix, bisect to find and leave out the culprits.

    Each piece is its own transaction, applied in order, so per-key order is kept. An outage raises.
    """
    if not items:
        return Isolated(results=[], refused=[])
    try:
        return Isolated(results=[await apply(items)], refused=[])
    except Exception as exc:
        if is_outage(exc):
            raise
        if len(items) == 1:
            await _ping(engine)  # a refusal seen while the database is going down is an outage, not poison
            log.warning("event refused by the database; dead-lettered", extra={"error": type(exc).__name__})
            return Isolated(results=[], refused=[(items[0], refusal_reason(exc))])
        middle = len(items) // 2
        first = await apply_isolating(items[:middle], apply, engine=engine)
        second = await apply_isolating(items[middle:], apply, engine=engine)
        return Isolated(results=first.results + second.results, refused=first.refused + second.refused)


async def _ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
