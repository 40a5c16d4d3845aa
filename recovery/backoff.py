"""Capped exponential backoff for the service's loops, logging a state change once, not every attempt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg.exceptions as pg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from recovery.errors import RecoveryError

log = logging.getLogger(__name__)

# Failures of the environment: the server is gone, refuses, is shutting down or too slow. Anything else a
# statement raises (bad value, constraint) is the data's fault and retrying the same data cannot fix it.
_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    PoolTimeoutError,
    pg.PostgresConnectionError,
    pg.ConnectionDoesNotExistError,
    pg.CannotConnectNowError,
    pg.TooManyConnectionsError,
    pg.AdminShutdownError,
    pg.CrashShutdownError,
    pg.QueryCanceledError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` is the environment failing (retry later), not one record's or one call's fault."""
    seen: BaseException | None = exc
    for _ in range(10):  # walk the wrapping chain: SQLAlchemy -> adapter -> driver
        if seen is None:
            return False
        if isinstance(seen, RecoveryError):
            return bool(seen.retriable)
        if isinstance(seen, _OUTAGES):
            return True
        if isinstance(seen, DBAPIError):
            if seen.connection_invalidated or "database is locked" in str(seen):
                return True
            seen = seen.orig if seen.orig is not None else seen.__cause__
            continue
        seen = seen.__cause__ or seen.__context__
    return False


def exponential(attempt: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """The project's one retry schedule: ``base`` before retry 1, doubling each time, at most ``cap``.

    Durable step retries (``steps/settle.py``), the helpdesk webhook and the loops' ``Backoff`` all use it;
    a retry wrapped around one provider call uses tenacity (``channels/retry.py``).
    """
    doublings = max(attempt - 1, 0)
    if base <= timedelta(0) or doublings >= 62 or 2**doublings >= cap / base:
        return min(base, cap) if base <= timedelta(0) else cap  # capped before the doubling could overflow
    delay: timedelta = base * 2**doublings
    return delay


@dataclass
class Backoff:
    """Delays 0.5 s, 1 s, 2 s … up to ``cap``; logs "<what> unavailable" once and "<what> back" once."""

    what: str
    base: float = 0.5
    cap: float = 10.0
    failures: int = field(default=0, init=False)

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def delay(self) -> float:
        """The next wait: exponential in the number of failures, capped, with a little jitter."""
        raw = exponential(
            self.failures, base=timedelta(seconds=self.base), cap=timedelta(seconds=self.cap)
        ).total_seconds()
        return float(raw * (0.8 + 0.4 * random.random()))  # jitter spreads replicas' retries apart

    def failed(self, exc: BaseException) -> float:
        """Record one failed attempt; log only the transition to failing. Return the delay to wait."""
        self.failures += 1
        if self.failures == 1:
            log.warning(
                "%s unavailable; retrying with backoff: %s",
                self.what,
                _describe(exc),
                extra={"loop": self.what, "error": type(exc).__name__},
            )
        return self.delay()

    def succeeded(self) -> None:
        """Record a success; log the transition back to working."""
        if self.failures:
            log.warning("%s back after %d failed attempts", self.what, self.failures, extra={"loop": self.what})
        self.failures = 0

    async def wait(self, exc: BaseException, stop: asyncio.Event) -> None:
        """Record the failure and sleep its delay, waking early when ``stop`` is set."""
        delay = self.failed(exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


def _describe(exc: BaseException) -> str:
    # The class and first line only: driver messages can be long, and never carry shopper data here.
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first[:200]}"


async def wait_first(*events: asyncio.Event, within: float | None = None) -> None:
    """Wait until any of ``events`` is set, or ``within`` seconds have passed (None: no limit)."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
