"""What a starting service is still waiting for, and why: ``/readyz`` names it while HTTP is already up."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from recovery.errors import NotReady

log = logging.getLogger(__name__)


class StartUp:
    """The dependency being waited for and the last reason it failed; logs a new reason once, not per attempt."""

    def __init__(self) -> None:
        self.waiting_for: str | None = "start-up"
        self.cause: str | None = None

    def check(self) -> None:
        """Raise ``NotReady`` naming what start-up waits for (nothing once it has completed)."""
        if self.waiting_for is None:
            return
        reason = f"waiting for the {self.waiting_for}"
        raise NotReady(f"{reason}: {self.cause}" if self.cause else reason)

    def guarded(self, what: str, attempt: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """``attempt``, recording each failure's reason under ``what`` (the retry loop itself logs the outage)."""

        async def run() -> None:
            self.waiting_for = what
            try:
                await attempt()
            except Exception as exc:
                cause = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                if self.cause is not None and cause != self.cause:
                    # The same outage with a new reason (e.g. refused, then credentials rejected): say so once.
                    log.warning("%s still unavailable, now: %s", what, cause, extra={"loop": what})
                self.cause = cause
                raise
            self.cause = None

        return run

    def completed(self) -> None:
        """Every dependency was reached: readiness is the running parts' own from now on."""
        self.waiting_for = None
        self.cause = None
