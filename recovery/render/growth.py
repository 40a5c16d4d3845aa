"""How big an operation's result will be, worked out before running it: the sandbox refuses oversized ones."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from typing import Any

from recovery.render.bounds import RenderRefused, max_value, refuse_size, weight

MAX_EXPONENT = 64
_SIZED = (str, bytes, list, tuple)
# str methods whose result can be much larger than the string; every other one keeps or shrinks it.
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})
_REFUSED_METHODS = frozenset({"translate", "maketrans", "format_map"})
_SPEC_NUMBER = re.compile(r"\d+")


def _digits(number: int) -> int:
    return number.bit_length() // 3 + 1


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left <operator> right`` when its result would pass the per-value bound."""
    if operator == "**":
        _check_power(left, right)
    elif operator == "*":
        _check_product(left, right)
    elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
        refuse_size(weight(left) + weight(right), "a concatenation")


def _check_power(left: Any, right: Any) -> None:
    if isinstance(right, int | float) and not isinstance(right, bool) and abs(right) > MAX_EXPONENT:
        raise RenderRefused(f"exponent {right} is larger than the sandbox allows ({MAX_EXPONENT})")
    if isinstance(left, int) and isinstance(right, int) and right > 0:
        refuse_size(left.bit_length() * right // 3 + 1, "a power")


def _check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        refuse_size(_digits(left) + _digits(right), "a product")
        return
    sized, count = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(sized, _SIZED) and isinstance(count, int):
        # A list of references to one big string is as big as the string repeated.
        refuse_size(weight(sized, stop=max_value() // max(count, 1) + 1) * max(count, 0), "a repetition")


def check_concat(operands: Sequence[Any]) -> None:
    """Refuse ``a ~ b ~ …`` before joining when the operands together pass the bound."""
    total = 0
    for operand in operands:
        total += weight(operand)
        refuse_size(total, "a '~' concatenation")


def replaced_size(text: str, old: str, new: str, count: int | None = None) -> int:
    """Length of ``text.replace(old, new, count)``, counted without building it."""
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def check_replace(text: object, old: object, new: object, count: object = None) -> None:
    """Refuse a ``replace`` whose result would pass the bound."""
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        limit = count if isinstance(count, int) and not isinstance(count, bool) else None
        refuse_size(replaced_size(text, old, new, limit), "a replace")


def check_wordwrap(text: object, width: object, wrapstring: object) -> None:
    """Refuse a ``wordwrap`` whose inserted line breaks would pass the bound."""
    if not isinstance(text, str):
        return
    wide = width if isinstance(width, int) and width > 0 else 1
    breaks = len(text) // wide + len(text.split()) + 1
    refuse_size(len(text) + breaks * len(wrapstring if isinstance(wrapstring, str) else "\n"), "a wordwrap")


def check_join(items: Sequence[Any], separator: object) -> None:
    """Refuse joining ``items`` with ``separator`` when the result would pass the bound."""
    glue = len(separator) if isinstance(separator, str) else 1
    refuse_size(weight(list(items)) + glue * max(len(items) - 1, 0), "a join")


def check_format(template: str) -> None:
    """Refuse a ``str.format`` pattern asking for widths or precisions past the bound (``{:>999999999}``)."""
    limit = max_value()
    for _, _, spec, _ in string.Formatter().parse(template):
        if spec and ("{" in spec or any(int(n) > limit for n in _SPEC_NUMBER.findall(spec))):
            raise RenderRefused(f"format spec {spec[:40]!r} is larger than the sandbox allows ({limit})")


def check_method_call(method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call of a growing ``str`` method (``ljust``, ``replace``, ``join``…) before it runs."""
    # Jinja hands out str.format as a wrapper; the string it formats is the wrapped method's owner.
    owner = getattr(method, "__self__", None) or getattr(getattr(method, "__wrapped__", None), "__self__", None)
    name = getattr(method, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in _REFUSED_METHODS:
        raise RenderRefused(f"str.{name} is not allowed in messages")
    values = [*args, *kwargs.values()]
    if name in _WIDTH_METHODS and values and isinstance(values[0], int):
        refuse_size(values[0], f"str.{name}")
    elif name == "expandtabs":
        size = values[0] if values and isinstance(values[0], int) else 8
        refuse_size(len(owner) + owner.count("\t") * max(size, 0), "str.expandtabs")
    elif name == "replace" and len(values) >= 2:
        check_replace(owner, values[0], values[1], values[2] if len(values) > 2 else None)
    elif name in ("format", "format_map"):
        check_format(owner)
