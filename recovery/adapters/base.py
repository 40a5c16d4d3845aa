"""What a translation yields, and the small field readers every platform translator shares.

A translator is a pure function ``(payload, topic) -> Outcome``: the native events a payload stands for,
a skip (a platform type the service does not use), or a rejection whose reason names the format and the
field, never a value (reasons are logged and published).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

NativeEvent = dict[str, Any]
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_TYPE_LABEL = re.compile(r"[^A-Za-z0-9_./ -]")


@dataclass(frozen=True, kw_only=True)
class Translated:
    """The native events a platform payload stands for (possibly none, e.g. a cancelled order)."""

    events: tuple[NativeEvent, ...]


@dataclass(frozen=True, kw_only=True)
class Skipped:
    """A platform type the service does not use: counted, not dead-lettered."""

    format: str
    type: str


@dataclass(frozen=True, kw_only=True)
class Rejected:
    """A payload that does not map; ``reason`` names the format and the field."""

    reason: str


Outcome = Translated | Skipped | Rejected


class MissingField(Exception):
    """Raised inside a translator when a field it needs is absent or unusable."""

    def __init__(self, field: str, problem: str = "missing field") -> None:
        super().__init__(field)
        self.field = field
        self.problem = problem


def rejected(format_: str, type_: str, exc: MissingField) -> Rejected:
    """The rejection for a missing field, e.g. ``stripe payment_intent.payment_failed: missing field '…'``."""
    return Rejected(reason=f"{format_} {type_label(type_)}: {exc.problem} '{exc.field}'")


def type_label(value: object) -> str:
    """A platform type safe to show in a reason or a metric label (bounded, no odd characters)."""
    text = value if isinstance(value, str) else "(none)"
    return _TYPE_LABEL.sub("_", text)[:64] or "(none)"


def dig(payload: Any, path: str) -> Any:
    """The value at a dotted ``path`` inside nested mappings, or ``None``."""
    current = payload
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def section(payload: Any, path: str) -> dict[str, Any]:
    """The object at ``path``, or an empty one when absent or not an object."""
    value = dig(payload, path)
    return value if isinstance(value, dict) else {}


def need(payload: Any, path: str) -> Any:
    """The value at ``path``; ``MissingField`` naming it when absent, null or empty."""
    value = dig(payload, path)
    if value is None or value == "" or value == [] or value == {}:
        raise MissingField(path)
    return value


def need_text(payload: Any, path: str) -> str:
    """A required identifier as text (platforms send some ids as numbers)."""
    value = need(payload, path)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MissingField(path, "not text or a number:")
    return str(value)


def amount(value: Any, path: str) -> str:
    """A decimal amount (platforms send strings or numbers) as exact text; ``MissingField`` when not one."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MissingField(path, "not an amount:")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise MissingField(path, "not an amount:") from exc
    if not number.is_finite():
        raise MissingField(path, "not an amount:")
    return str(number)


def need_amount(payload: Any, path: str) -> str:
    """The required amount at ``path``."""
    return amount(need(payload, path), path)


def currency(payload: Any, path: str) -> str:
    """An ISO 4217 code, upper-cased (Stripe sends ``eur``)."""
    return str(need(payload, path)).upper()


def utc_from_unix(seconds: Any, path: str) -> str:
    """RFC 3339 text for a Unix time (Stripe's ``created``)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise MissingField(path)
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def with_offset(value: Any, path: str) -> str:
    """RFC 3339 text; a naive time (WooCommerce's ``*_gmt`` fields) is UTC."""
    if not isinstance(value, str) or not value:
        raise MissingField(path)
    if value.endswith("Z") or re.search(r"[+-]\d\d:?\d\d$", value):
        return value
    return value + "+00:00"


def phone(value: Any) -> str | None:
    """An E.164 number, or ``None`` (a local-format number would dead-letter the whole event)."""
    if not isinstance(value, str):
        return None
    compact = re.sub(r"[\s().-]", "", value)
    if not _E164.fullmatch(compact):
        return None
    try:
        possible = phonenumbers.is_possible_number(phonenumbers.parse(compact))
    except phonenumbers.NumberParseException:
        return None
    return compact if possible else None


def text(value: Any, limit: int = 200) -> str | None:
    """Non-empty text, cut to ``limit``; ``None`` otherwise."""
    if isinstance(value, str) and value.strip():
        return value.strip()[:limit]
    return None


def compact(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` without ``None`` values (absent stays absent: unknown consent is no consent)."""
    return {key: value for key, value in document.items() if value is not None}


def customer(
    *,
    id: Any = None,
    email: Any = None,
    phone_number: Any = None,
    first_name: Any = None,
    locale: Any = None,
    timezone: Any = None,
    consent: dict[str, bool | None] | None = None,
) -> dict[str, Any] | None:
    """A native ``customer`` from what the platform gave; ``None`` when it gave nothing."""
    found = compact(
        {
            "id": str(id)
            if isinstance(id, str | int) and not isinstance(id, bool) and str(id) not in ("", "0")
            else None,
            "email": text(email, 320),
            "phone": phone(phone_number),
            "first_name": text(first_name),
            "locale": text(locale, 35),
            "timezone": text(timezone, 64),
            "consent": compact(consent) or None if consent else None,
        }
    )
    return found or None


def envelope(*, id: str, type: str, occurred_at: str, cart_id: str | None, **fields: Any) -> NativeEvent:
    """A native event with its envelope, leaving out absent optional parts."""
    return compact({"id": id[:128], "type": type, "occurred_at": occurred_at, "cart_id": cart_id, **fields})
