"""Waiting on what a service needs: dependencies reachable at start-up, background tasks that must not die."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from recovery.backoff import Backoff, is_outage
from recovery.errors import RecoveryError

log = logging.getLogger(__name__)


class TaskDied(RecoveryError):
    """A background task ended on its own: the process must stop so the orchestrator restarts it."""


async def until_stop_or_death(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for ``stop``; raise ``TaskDied`` naming the task if one ends first (loops that retry never end)."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    dead = [task for task in tasks if task in done]
    if not dead or stop.is_set():
        return
    task = dead[0]
    error = None if task.cancelled() else task.exception()
    reason = repr(error) if error is not None else "returned before the service was stopped"
    log.error(
        "background task died; stopping the service", extra={"task": task.get_name(), "reason": reason}, exc_info=error
    )
    raise TaskDied(f"background task {task.get_name()!r} died: {reason}") from error


class StoppedWhileWaiting(Exception):
    """Asked to stop while a dependency needed at start-up was still unreachable."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


async def until_reachable(what: str, attempt: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Run ``attempt`` until it succeeds, backing off while the failure is an outage; other errors raise."""
    backoff = Backoff(what)
    while True:
        try:
            await attempt()
        except Exception as exc:
            if not is_outage(exc):
                raise
            if stop.is_set():
                raise StoppedWhileWaiting(what) from exc
            await backoff.wait(exc, stop)
            continue
        backoff.succeeded()
        return


async def first_of(waiting: Coroutine[Any, Any, Any], task: asyncio.Task[None]) -> None:
    """Wait for ``waiting``; if ``task`` ends first (e.g. the HTTP port is taken), raise its error."""
    waiter = asyncio.ensure_future(waiting)
    done, _ = await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()
        raise RuntimeError("the HTTP server stopped at start-up")
