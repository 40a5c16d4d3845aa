"""``when:`` conditions: Jinja2 expressions compiled in the immutable sandbox, evaluated over plain data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from recovery.errors import ConfigError

# One environment for every condition: the sandbox refuses attribute access to internals
# (__class__, __globals__ ...) and the immutable variant refuses mutating lists and dicts.
_ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_ENVIRONMENT.globals.clear()  # no range(), cycler, joiner...: a condition only reads the context


class ConditionError(ConfigError):
    """A condition that does not compile, or fails while evaluated."""


class Condition:
    """A compiled, sandboxed boolean expression."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._expression: Callable[..., Any] = _ENVIRONMENT.compile_expression(source, undefined_to_none=False)
        except TemplateError as exc:
            raise ConditionError(f"invalid condition {source!r}: {exc.message or exc}") from exc

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """True when the condition holds; ``ConditionError`` when it cannot be evaluated."""
        try:
            return bool(self._expression(**context))
        except TemplateError as exc:
            raise ConditionError(f"condition {self.source!r} failed: {exc.message or exc}") from exc
        except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            raise ConditionError(f"condition {self.source!r} failed: {exc}") from exc
