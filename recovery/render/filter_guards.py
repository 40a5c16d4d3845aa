"""Jinja's own filters, each wrapped so a result past the sandbox's bounds is refused before it is built."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from recovery.render import bounds, growth

Filter = Callable[..., Any]


def _replace(args: list[Any], kwargs: dict[str, Any]) -> None:
    # do_replace(eval_ctx, s, old, new, count=None)
    values = args[1:] + [kwargs[k] for k in ("old", "new", "count") if k in kwargs]
    if len(values) >= 3:
        text = values[0] if isinstance(values[0], str) else str(bounds.check_weight(values[0]))
        count = values[3] if len(values) > 3 else None
        growth.check_replace(text, str(values[1]), str(values[2]), count)


def _join(args: list[Any], kwargs: dict[str, Any]) -> None:
    # do_join(eval_ctx, value, d="", attribute=None): the items are listed once, checked, then joined.
    if len(args) > 1:
        args[1] = items = list(args[1])
        separator = args[2] if len(args) > 2 else kwargs.get("d", "")
        growth.check_join(items, separator)


def _wordwrap(args: list[Any], kwargs: dict[str, Any]) -> None:
    # do_wordwrap(environment, s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True)
    if len(args) > 1:
        width = args[2] if len(args) > 2 else kwargs.get("width", 79)
        wrapstring = args[4] if len(args) > 4 else kwargs.get("wrapstring")
        growth.check_wordwrap(args[1], width, wrapstring or "\n")


def _sum(args: list[Any], kwargs: dict[str, Any]) -> None:
    # sum(environment, iterable, attribute=None, start=0): adding lists or strings grows without bound.
    start = args[3] if len(args) > 3 else kwargs.get("start", 0)
    if not isinstance(start, int | float):
        raise bounds.RenderRefused("sum adds numbers only in messages")


_BEFORE: dict[str, Callable[[list[Any], dict[str, Any]], None]] = {
    "replace": _replace,
    "join": _join,
    "wordwrap": _wordwrap,
    "sum": _sum,
}


def _guarded(name: str, function: Filter) -> Filter:
    """``function`` with its size check before (when it has one) and the per-value bound after."""
    before = _BEFORE.get(name)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        listed = list(args)
        if before is not None:
            before(listed, kwargs)
        return bounds.check_weight(function(*listed, **kwargs))

    guarded.__dict__.update(getattr(function, "__dict__", {}))  # keep Jinja's pass_context / pass_eval_context marks
    guarded.__name__ = getattr(function, "__name__", name)
    return guarded


def guard_filters(filters: MutableMapping[str, Filter]) -> None:
    """Wrap every filter of ``filters`` in place (Jinja's built-ins; the message filters are added after)."""
    for name, function in list(filters.items()):
        filters[name] = _guarded(name, function)
