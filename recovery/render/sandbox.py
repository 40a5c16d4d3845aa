"""The Jinja2 sandbox messages render in: no code execution, no autoescape escape hatch, bounded work."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, FunctionLoader, StrictUndefined, lexer, select_autoescape
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_STRING = 100_000
MAX_RANGE_BUDGET = 10_000
MAX_EXPONENT = 64

# Filters that can turn a short template into gigabytes (center/indent/batch/slice padding, "%" formats)
# or that undo escaping or invent links (safe, urlize); the rest of Jinja's filters stay available.
_REFUSED_FILTERS = ("batch", "center", "format", "indent", "pprint", "random", "safe", "slice", "urlize")
# lipsum writes unbounded text; namespace lets a loop double a string at every turn.
_REFUSED_GLOBALS = ("lipsum", "namespace")

_range_budget: ContextVar[list[int]] = ContextVar("template_range_budget")


class PathUndefined(StrictUndefined):
    """Strict undefined whose message names the full variable path: ``'cart.totl' is undefined``."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        path = getattr(self._undefined_obj, "record_path", None)
        if self._undefined_hint is None and isinstance(path, str) and isinstance(self._undefined_name, str):
            return f"'{path}.{self._undefined_name}' is undefined"
        return super()._undefined_message


class _NoAutoescapeOff(Extension):
    """Refuses ``{% autoescape false %}``: escaping shopper data in HTML is not optional."""

    def filter_stream(self, stream: lexer.TokenStream) -> Iterator[lexer.Token]:
        previous = None
        for token in stream:
            if previous is not None and previous.type == "block_begin" and token.value == "autoescape":
                raise TemplateSyntaxError(
                    "autoescape blocks are not allowed in messages", token.lineno, stream.name, stream.filename
                )
            previous = token
            yield token


def _refuse_size(size: int) -> None:
    if size > MAX_STRING:
        raise SecurityError(f"a result of {size} items is larger than the sandbox allows ({MAX_STRING})")


def _bounded(value: object) -> object:
    """Refuse a string or sequence result larger than ``MAX_STRING``."""
    if isinstance(value, str | list | tuple):
        _refuse_size(len(value))
    return value


def _budgeted_range(*args: int) -> range:
    """``range`` drawing on a per-render budget, so nested loops cannot spin for hours."""
    numbers = range(*args)
    budget = _range_budget.get(None)
    remaining = MAX_RANGE_BUDGET if budget is None else budget[0]
    if len(numbers) > remaining:
        raise SecurityError(f"range of {len(numbers)} numbers exceeds the sandbox budget ({MAX_RANGE_BUDGET})")
    if budget is not None:
        budget[0] -= len(numbers)
    return numbers


def start_render_budget() -> Token[list[int]]:
    """Give the current render a fresh range budget; pass the result to ``end_render_budget``."""
    return _range_budget.set([MAX_RANGE_BUDGET])


def end_render_budget(token: Token[list[int]]) -> None:
    """Restore the budget that was in force before ``start_render_budget``."""
    _range_budget.reset(token)


def _guard_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a string-producing filter so its result is size-checked."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        return _bounded(function(*args, **kwargs))

    guarded.__dict__.update(function.__dict__)  # keep Jinja's pass_context / pass_eval_context marks
    return guarded


class MessageEnvironment(ImmutableSandboxedEnvironment):
    """Immutable sandbox with bounded arithmetic, bounded ranges and locale-relative template paths."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than the sandbox allows ({MAX_EXPONENT})")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' string formatting is not allowed in messages: use filters")
        if operator == "*":
            sized, count = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(sized, str | list | tuple) and isinstance(count, int):
                _refuse_size(len(sized) * count)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # Recursive macros can double a string at each call; refuse oversized arguments early.
        for value in (*args, *kwargs.values()):
            _bounded(value)
        return _bounded(super().call(__context, __obj, *args, **kwargs))

    def join_path(self, template: str, parent: str) -> str:
        # "_layout.email.html" inside fr/cart_reminder.email.html means fr/_layout.email.html.
        if "/" in template:
            return template
        return posixpath.join(posixpath.dirname(parent), template)


def _saved_loader(sources: dict[str, str]) -> BaseLoader:
    """Saved versions by path; errors then name ``fr/cart_offer.email.html``, not ``<template>``."""

    def load(name: str) -> tuple[str, str, Callable[[], bool]] | None:
        return (sources[name], name, lambda: True) if name in sources else None

    return FunctionLoader(load)


def make_environment(
    templates_dir: Path, filters: dict[str, Callable[..., Any]], sources: Mapping[str, str] | None = None
) -> MessageEnvironment:
    """The one environment every message of ``templates_dir`` renders in; ``sources`` (saved versions) win."""
    files = FileSystemLoader(str(templates_dir))
    env = MessageEnvironment(
        loader=ChoiceLoader([_saved_loader(dict(sources)), files]) if sources else files,
        undefined=PathUndefined,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=lambda value: "" if value is None else value,
        # Frozen once loaded: an edit reaches shoppers only through load_templates, which checks it first.
        auto_reload=False,
        cache_size=-1,
        extensions=[_NoAutoescapeOff],
    )
    for name in _REFUSED_FILTERS:
        env.filters.pop(name, None)
    for name in _REFUSED_GLOBALS:
        env.globals.pop(name, None)
    for name in ("join", "replace", "wordwrap", "truncate"):
        env.filters[name] = _guard_filter(env.filters[name])
    env.globals["range"] = _budgeted_range
    env.filters.update(filters)
    return env


def is_template_frame(globals_: dict[str, Any]) -> bool:
    """True for the frames Jinja fakes so a traceback points at a template line."""
    return "__jinja_exception__" in globals_
