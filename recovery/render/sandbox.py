"""The Jinja2 sandbox messages render in: no code execution, no autoescape escape hatch, bounded work."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    FunctionLoader,
    StrictUndefined,
    lexer,
    nodes,
    select_autoescape,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from recovery.render import bounds, growth
from recovery.render.filter_guards import guard_filters

# Filters that can turn a short template into gigabytes (center/indent/batch/slice padding, "%" formats)
# or that undo escaping or invent links (safe, urlize); the rest of Jinja's filters stay available.
_REFUSED_FILTERS = ("batch", "center", "format", "indent", "pprint", "random", "safe", "slice", "urlize")
# lipsum writes unbounded text; namespace lets a loop double a string at every turn.
_REFUSED_GLOBALS = ("lipsum", "namespace")
_LOOP_GUARD = "loop_guard"


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


def _budgeted_range(*args: int) -> range:
    """``range`` drawing on a per-render budget, so nested loops cannot spin for hours."""
    numbers = range(*args)
    bounds.take_range(len(numbers))
    return numbers


def _finalize(value: object) -> object:
    """Every ``{{ … }}`` output: counted against the render's output budget (and its deadline)."""
    if value is None:
        return ""
    bounds.charge_output(len(value) if isinstance(value, str) else bounds.weight(value))
    return value


def _bounded_concat(parts: Iterable[str]) -> str:
    """Join a block's buffer (``{% set %}`` blocks, macros, filter blocks) only when the result is bounded."""
    chunks = list(parts)
    bounds.refuse_size(sum(len(chunk) for chunk in chunks), "a block's output")
    return "".join(chunks)


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``~`` through a size check and every ``for`` loop through the iteration/deadline guard."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # Same join functions as Jinja's, called by the environment once the operands' size is known.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.checked_concat({join}, (")
        for operand in node.nodes:
            self.visit(operand, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        guarded = isinstance(node.iter, nodes.Call) and isinstance(node.iter.node, nodes.EnvironmentAttribute)
        if not guarded:
            guard = nodes.EnvironmentAttribute(_LOOP_GUARD, lineno=node.lineno)
            node.iter = nodes.Call(guard, [node.iter], [], None, None, lineno=node.lineno)
        super().visit_For(node, frame)


def _checked_concat(join: Callable[[Sequence[Any]], str], operands: Sequence[Any]) -> str:
    """``a ~ b ~ …`` refused before joining when the operands pass the per-value bound."""
    growth.check_concat(operands)
    return cast(str, bounds.check_weight(join(operands), "a '~' concatenation"))


class MessageEnvironment(ImmutableSandboxedEnvironment):
    """Immutable sandbox where every growing operation is sized before it runs, and renders have a deadline."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _BoundedCodeGenerator
    concat = staticmethod(_bounded_concat)
    checked_concat = staticmethod(_checked_concat)
    loop_guard = staticmethod(bounds.guarded_iter)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' string formatting is not allowed in messages: use filters")
        growth.check_binop(operator, left, right)
        return bounds.check_weight(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        bounds.check_deadline()
        # Recursive macros can double a string at each call; refuse oversized arguments early.
        for value in (*args, *kwargs.values()):
            bounds.check_weight(value, "an argument")
        growth.check_method_call(__obj, args, kwargs)
        if getattr(__obj, "__name__", "") == "join" and isinstance(getattr(__obj, "__self__", None), str) and args:
            items = list(args[0])
            growth.check_join(items, __obj.__self__)
            args = (items, *args[1:])
        return bounds.check_weight(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        bounds.check_deadline()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        bounds.check_deadline()
        return super().getitem(obj, argument)

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
        finalize=_finalize,
        # Frozen once loaded: an edit reaches shoppers only through load_templates, which checks it first.
        auto_reload=False,
        cache_size=-1,
        extensions=[_NoAutoescapeOff],
    )
    for name in _REFUSED_FILTERS:
        env.filters.pop(name, None)
    for name in _REFUSED_GLOBALS:
        env.globals.pop(name, None)
    guard_filters(env.filters)
    env.globals["range"] = _budgeted_range
    env.filters.update(filters)
    return env


def is_template_frame(globals_: dict[str, Any]) -> bool:
    """True for the frames Jinja fakes so a traceback points at a template line."""
    return "__jinja_exception__" in globals_
