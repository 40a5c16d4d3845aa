"""Rendering off the event loop: templates run in worker threads, so HTTP, the consumer and the scheduler
keep answering while a message renders, and a render past its deadline fails instead of stalling them."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from recovery.render.bounds import current_limits, operation_deadline
from recovery.render.files import RenderTimedOut

P = ParamSpec("P")
T = TypeVar("T")

# Own threads: a slow render never takes the default executor's slots (DNS lookups, file reads) from others.
_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="render")
# The sandbox stops a render at its deadline; this is the margin before the caller stops waiting anyway
# (a single bounded C operation can finish a little late).
_GRACE_S = 1.0


async def off_loop(seconds: float | None, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args)`` in a render thread, every render inside stopping ``seconds`` from now
    (``render.deadline`` when ``None``); ``RenderTimedOut`` if it still has not returned after a grace."""
    limit = current_limits().deadline if seconds is None else seconds

    def bounded() -> T:
        with operation_deadline(limit):
            return function(*args, **kwargs)

    message = f"rendering took longer than {limit:g} s and was stopped"
    return await _in_render_thread(bounded, limit + _GRACE_S, message)


async def off_loop_each(calls: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Every call in one render-thread hop, each stopping at its own ``render.deadline``; a call's error is
    returned in its place. ``RenderTimedOut`` when they still have not all returned after their deadlines."""
    limit = current_limits().deadline

    def each() -> list[T | Exception]:
        results: list[T | Exception] = []
        for call in calls:
            try:
                with operation_deadline(limit):
                    results.append(call())
            except Exception as exc:
                results.append(exc)
        return results

    message = f"rendering {len(calls)} messages took longer than {limit:g} s each"
    return await _in_render_thread(each, limit * len(calls) + _GRACE_S, message)


async def _in_render_thread(function: Callable[[], T], wait_s: float, message: str) -> T:
    """``function()`` in a render thread; ``RenderTimedOut(message)`` when it has not returned after ``wait_s``."""
    try:
        return await asyncio.wait_for(_start(function), timeout=wait_s)
    except TimeoutError:
        raise RenderTimedOut(message) from None


async def in_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args)`` in a render thread without a deadline (compiling templates: bounded by their size)."""
    return await _start(functools.partial(function, *args, **kwargs))


def _start(function: Callable[[], T]) -> asyncio.Future[T]:
    """``function()`` started in a render thread, in a copy of this context (the render limits, tracing)."""
    context = contextvars.copy_context()
    return asyncio.get_running_loop().run_in_executor(_executor, functools.partial(context.run, function))
