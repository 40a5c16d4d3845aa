"""A channel's rate for the whole deployment: send slots reserved in the database (PostgreSQL), per block.

One row per channel in ``channel_pacing`` says where the next free slot starts on the database's clock. A
reservation moves it on by ``count / rate`` seconds in one atomic upsert and answers how long from now the
block starts; the replica then sends one step per slot (``slots.Slots``). The scheduler asks synchronously
(``take``), so a reservation runs as a task beside it and ``wait`` tells it when to look again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.channels.slots import Slots, block_cap, grace, next_block
from recovery.store.schema import channel_pacing

log = logging.getLogger(__name__)

# (channel, slots, seconds they span) -> seconds from now until the first one.
Reserve = Callable[[str, int, float], Awaitable[float]]

# How soon the scheduler looks again while no slot is reserved yet (a reservation's round trip is about 1 ms).
REFILL_POLL_S = 0.01
# After a failed reservation (database unreachable), the channel waits this long before asking again.
RETRY_AFTER_S = 1.0

# The clock is the database's, the one clock every replica shares. Waiting for another replica's lock keeps
# the earlier ``now``: the block then starts later than it could, never earlier.
_RESERVE = text(
    f"""
    WITH clock AS (SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION) AS now)
    INSERT INTO {channel_pacing.name} (channel, next_free)
    SELECT :channel, clock.now + :span FROM clock
    ON CONFLICT (channel) DO UPDATE
    SET next_free = GREATEST({channel_pacing.name}.next_free, EXCLUDED.next_free - :span) + :span
    RETURNING next_free - :span - (SELECT now FROM clock) AS starts_in
    """
)


def shared_reserve(engine: AsyncEngine) -> Reserve | None:
    """Reservations in ``engine``'s database, or None when it serves one process only (SQLite)."""
    if engine.dialect.name != "postgresql":
        return None

    async def reserve(channel: str, count: int, span: float) -> float:
        async with engine.begin() as conn:
            starts_in = (await conn.execute(_RESERVE, {"channel": channel, "span": span})).scalar_one()
        return max(0.0, float(starts_in))

    return reserve


class SharedPace:
    """One channel's slots in this process, reserved a block at a time through ``reserve``."""

    def __init__(self, channel: str, rate: float, reserve: Reserve, clock: Callable[[], float]) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._channel = channel
        self._reserve = reserve
        self._clock = clock
        self._interval = 1.0 / rate
        self._late = grace(self._interval)
        self._cap = block_cap(rate)
        self._size = 0  # slots asked for last time (the first reservation asks for one)
        self._slots = Slots(interval=self._interval)
        self._asking: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._failing = False

    def take(self, now: float) -> bool:
        """Use a reserved slot if one is due now; with none left, start reserving more."""
        taken, self._slots = self._slots.take(now, self._late)
        if not taken and not self._slots.left:
            self._ask(now)
        return taken

    def wait(self, now: float) -> float:
        """Seconds until the next reserved slot, or until a reservation on its way is worth looking at."""
        wait = self._slots.wait(now, self._late)
        if wait is not None:
            return wait
        # Nothing reserved: the next ``take`` asks (after a failure, once the retry time has come). Never 0,
        # so a claimer with no free sender to hand a step to does not loop without sleeping.
        return max(REFILL_POLL_S, self._retry_at - now)

    def _ask(self, now: float) -> None:
        if self._asking is not None or now < self._retry_at:
            return
        self._size = next_block(self._size, self._slots.dropped, self._cap)
        self._asking = asyncio.get_running_loop().create_task(self._reserve_block(self._size))

    async def _reserve_block(self, count: int) -> None:
        try:
            starts_in = await self._reserve(self._channel, count, count * self._interval)
        except Exception as exc:  # the database is away: this channel waits, the scheduler goes on
            if not self._failing:  # once per outage, not once a second
                log.warning(
                    "send slots not reserved; retrying", extra={"channel": self._channel, "error": type(exc).__name__}
                )
            self._failing = True
            self._retry_at = self._clock() + RETRY_AFTER_S
        else:
            self._failing = False
            # Counted from now, after the answer came back: slots start no earlier than the database placed them.
            self._slots = Slots(first=self._clock() + starts_in, interval=self._interval, left=count)
        finally:
            self._asking = None
