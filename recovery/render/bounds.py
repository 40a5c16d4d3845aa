"""How much one render may compute: value sizes checked before a value is built, a total output and a deadline.

Every check here runs *before* the operation it guards, so a hostile template is refused in microseconds
instead of after allocating gigabytes or holding the interpreter for hours inside one big-integer power.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2.exceptions import SecurityError


@dataclass(frozen=True, kw_only=True)
class RenderLimits:
    """The bounds of one render; ``render.*`` settings."""

    max_value: int = 100_000  # characters (or items) of any one string, list or number's digits
    max_output: int = 1_000_000  # characters one render writes, buffered blocks and macros included
    max_iterations: int = 100_000  # loop turns of one render, all loops together
    max_range: int = 10_000  # numbers all ``range()`` calls of one render may produce
    deadline: float = 2.0  # seconds one render may run; the sandbox stops it past this
    check_deadline: float = 10.0  # seconds a save's full check (every template, every sample) may run


class RenderRefused(SecurityError):
    """The sandbox refused to compute a value or to go on rendering."""


class RenderTimeout(RenderRefused):
    """The render ran past its deadline and was stopped."""


_limits = RenderLimits()
_PAUSE_EVERY_S = 0.002


def configure(limits: RenderLimits) -> None:
    """Make ``limits`` the bounds of every render of this process (from settings at start-up)."""
    global _limits
    _limits = limits


def current_limits() -> RenderLimits:
    """The bounds renders use now."""
    return _limits


@dataclass(kw_only=True)
class Budget:
    """What is left to one render: output characters, loop turns, range numbers, and when it must stop."""

    limits: RenderLimits
    stop_at: float
    output: int = field(default=0)
    iterations: int = field(default=0)
    ranged: int = field(default=0)
    next_pause: float = field(default=0.0)


_budget: ContextVar[Budget | None] = ContextVar("render_budget", default=None)
# A whole operation (a save's full check, a preview) can end before each of its renders would.
_operation_stop: ContextVar[float | None] = ContextVar("render_operation_stop", default=None)


@contextmanager
def render_budget(limits: RenderLimits | None = None) -> Iterator[Budget]:
    """A fresh budget for one render, ending at its deadline or the enclosing operation's, whichever is first."""
    chosen = limits or _limits
    stop = time.monotonic() + chosen.deadline
    outer = _operation_stop.get()
    budget = Budget(limits=chosen, stop_at=stop if outer is None else min(stop, outer))
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


@contextmanager
def operation_deadline(seconds: float) -> Iterator[None]:
    """Every render inside stops at most ``seconds`` from now."""
    token = _operation_stop.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _operation_stop.reset(token)


def check_deadline() -> None:
    """Raise ``RenderTimeout`` when the current render is past its deadline; now and then, let other threads run."""
    budget = _budget.get()
    if budget is None:
        return
    now = time.monotonic()
    if now > budget.stop_at:
        raise RenderTimeout(f"rendering took longer than {budget.limits.deadline:g} s and was stopped")
    if now >= budget.next_pause:
        # Hand the GIL over every few milliseconds: the event loop's thread (HTTP, consumer, scheduler)
        # otherwise waits a full switch interval each time it wakes up while a render computes.
        budget.next_pause = now + _PAUSE_EVERY_S
        time.sleep(0)


def max_value() -> int:
    """The per-value bound in force."""
    budget = _budget.get()
    return (budget.limits if budget is not None else _limits).max_value


def refuse_size(size: int, what: str = "a result") -> None:
    """Refuse a value of ``size`` characters or items before it is built."""
    limit = max_value()
    if size > limit:
        raise RenderRefused(f"{what} of {size} characters or items is larger than the sandbox allows ({limit})")


def weight(value: object, stop: int | None = None) -> int:
    """Characters a value stands for, nested values included (each at least 1); counting stops past ``stop``."""
    limit = max_value() if stop is None else stop
    total = 0
    pending: list[object] = [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str | bytes):
            total += len(item) or 1
        elif isinstance(item, bool) or item is None:
            total += 1
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1  # about its decimal digits
        elif isinstance(item, list | tuple | set | frozenset):
            total += 0 if item else 1
            pending.extend(item)
        elif isinstance(item, dict):
            total += 0 if item else 1
            pending.extend(item.keys())
            pending.extend(item.values())
        else:
            total += 1
    return total


def check_weight(value: object, what: str = "a result") -> object:
    """``value`` unchanged when within the per-value bound; ``RenderRefused`` otherwise."""
    refuse_size(weight(value), what)
    return value


def charge_output(size: int) -> None:
    """Count ``size`` characters written by the render (also the deadline's checkpoint for output)."""
    budget = _budget.get()
    if budget is None:
        return
    check_deadline()
    budget.output += size
    if budget.output > budget.limits.max_output:
        raise RenderRefused(f"the message writes more than {budget.limits.max_output} characters")


def guarded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate a template loop, counting each turn and checking the deadline at every one."""
    for item in iterable:
        budget = _budget.get()
        if budget is not None:
            budget.iterations += 1
            if budget.iterations > budget.limits.max_iterations:
                raise RenderRefused(f"loops turn more than {budget.limits.max_iterations} times in one message")
            check_deadline()
        yield item


def take_range(count: int) -> None:
    """Draw ``count`` numbers from the render's ``range`` budget."""
    budget = _budget.get()
    limit = (budget.limits if budget is not None else _limits).max_range
    used = budget.ranged if budget is not None else 0
    if used + count > limit:
        raise RenderRefused(f"range of {count} numbers exceeds the sandbox budget ({limit})")
    if budget is not None:
        budget.ranged += count
