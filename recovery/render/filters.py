"""Filters messages use: ``track`` for every link, ``money`` and ``datetime`` formatted per locale."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from babel import Locale
from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import format_currency
from jinja2 import pass_context
from jinja2.runtime import Context

from recovery.attribution.feedback import parse_answer, preview_feedback_url
from recovery.render.bounds import render_budget
from recovery.render.context import RawLink
from recovery.render.sms_text import to_gsm

_LINK_SCHEMES = frozenset({"http", "https"})
DateFormat = Literal["short", "medium", "long", "full"]
_DATE_FORMATS: tuple[DateFormat, ...] = ("short", "medium", "long", "full")


@dataclass(frozen=True, kw_only=True)
class RenderState:
    """What the filters of one render need: the tracker, the formatting locale, currency and time zone."""

    track: Callable[[str], str]
    locale: Locale
    currency: str | None
    timezone: tzinfo
    tracked: set[str] = field(default_factory=set)
    # Signs a "why did you leave?" link for the message's journey; previews and checks have none.
    feedback: Callable[[str], str] = preview_feedback_url


_state: ContextVar[RenderState] = ContextVar("template_render_state")


@contextmanager
def rendering(state: RenderState) -> Iterator[RenderState]:
    """Make ``state`` the one the filters read while a message renders."""
    token = _state.set(state)
    try:
        with render_budget():
            yield state
    finally:
        _state.reset(token)


def _current() -> RenderState:
    try:
        return _state.get()
    except LookupError:
        raise RuntimeError("message filters only work inside Templates.render") from None


def _target(link: object) -> str:
    """The URL behind a link value, whether a shop ``RawLink`` or a literal string in the template."""
    if isinstance(link, RawLink):
        return link.url
    if isinstance(link, str):
        return link
    raise TypeError(f"track needs a link, not {type(link).__name__} (is the URL missing?)")


# pass_context on every filter: it keeps Jinja from folding them at compile time with another render's state.
@pass_context
def track(_: Context, link: object) -> str:
    """The tracked URL for ``link``; the only way a shop link reaches a message."""
    target = _target(link)
    if urlsplit(target).scheme.lower() not in _LINK_SCHEMES:
        raise ValueError(f"only http(s) links can be tracked, not {target[:60]!r}")
    state = _current()
    url = state.track(target)
    state.tracked.add(url)
    return url


@pass_context
def feedback_link(_: Context, answer: object) -> str:
    """The signed ``/f/`` link recording ``answer``: ``{{ 'shipping_cost' | feedback_link }}``."""
    state = _current()
    url = state.feedback(parse_answer(answer).value)
    state.tracked.add(url)
    return url


@pass_context
def with_query(_: Context, link: object, **params: str | int) -> RawLink:
    """``link`` plus query parameters, still to be tracked: ``feedback_url | with_query(reason="price")``."""
    target = _target(link)
    parts = urlsplit(target)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    path = link.path if isinstance(link, RawLink) else "link"
    return RawLink(urlunsplit(parts._replace(query=query)), path)


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None


@pass_context
def money(_: Context, amount: object, currency: str | None = None) -> str:
    """``189,80 €`` in French, ``€189.80`` in English; the cart's currency unless one is given."""
    state = _current()
    code = currency or state.currency
    if not code:
        raise ValueError("money needs a currency and the cart has none")
    return format_currency(_decimal(amount), code, locale=state.locale)


def _local(value: object, zone: tzinfo) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"{value!r} is not a date and time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def _date_format(name: str) -> DateFormat:
    for style in _DATE_FORMATS:
        if style == name:
            return style
    raise ValueError(f"date format {name!r}: use one of {', '.join(_DATE_FORMATS)}")


@pass_context
def format_datetime(_: Context, value: object, format: str = "long") -> str:
    """Date and time in the shopper's time zone: ``25 novembre 2025, 18:00``."""
    state = _current()
    style = _date_format(format)
    moment = _local(value, state.timezone)
    pattern = str(get_datetime_format(style, locale=state.locale))
    time_text = format_time(moment, "short", locale=state.locale)
    date_text = format_date(moment, style, locale=state.locale)
    return pattern.replace("'", "").replace("{0}", time_text).replace("{1}", date_text)


@pass_context
def format_day(_: Context, value: object, format: str = "long") -> str:
    """A date alone: ``25 novembre 2025``."""
    state = _current()
    if format not in _DATE_FORMATS:
        raise ValueError(f"date format {format!r}: use one of {sorted(_DATE_FORMATS)}")
    day = value if isinstance(value, date) and not isinstance(value, datetime) else _local(value, state.timezone)
    return format_date(day, format, locale=state.locale)


MESSAGE_FILTERS: dict[str, Callable[..., Any]] = {
    "track": track,
    "with_query": with_query,
    "feedback_link": feedback_link,
    "money": money,
    "datetime": format_datetime,
    "date": format_day,
    "gsm": to_gsm,
}
