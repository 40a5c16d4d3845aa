"""What a valid value of an event field is: URLs, email addresses, phone numbers, locales, zones, timestamps.

Each rule is a pure function of the text. A shopper's events repeat the same values, so each verdict is
remembered per text. The first sight of an email address of the common shape (``name.x+y@shop-1.example.com``)
is decided by a pattern whose every match email-validator accepts (``tests/unit/test_event_fields.py``
checks it), without running email-validator's Unicode and IDNA work (~30 µs each, a third of a decode).
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

# Which URLs from events may become a link or a redirect: absolute http(s) ones only.
HTTP_SCHEMES = frozenset({"http", "https"})
ONLY_HTTP = "only http(s) URLs are accepted"


def is_http_url(value: object) -> bool:
    """True for an absolute ``http://`` or ``https://`` URL with a host (never ``javascript:``, ``data:``…)."""
    return isinstance(value, str) and _is_http_url_text(value)


# A cart's events repeat its restore URL and its items' URLs: the verdict (a pure function of the text)
# is remembered, as for emails and phone numbers; urlsplit was the largest part of decoding a cart.
@functools.lru_cache(maxsize=65_536)
def _is_http_url_text(value: str) -> bool:
    if value != value.strip():
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in HTTP_SCHEMES and bool(parts.hostname)


def require_http_url(value: str) -> str:
    """``value`` when it is an http(s) URL; ``ValueError`` naming the rule otherwise (a pydantic validator)."""
    if not _is_http_url_text(value):  # pydantic hands over a str: no isinstance (3 URLs per cart event)
        raise ValueError(ONLY_HTTP)
    return value


def require_timestamp_text(value: Any) -> Any:
    """Timestamps as text only: pydantic would accept a Unix number; the contract says RFC 3339 text."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string with an offset")
    return value


def bounded_year(value: datetime) -> datetime:
    """``value`` when its year is a plausible one for an event (2000-2100)."""
    if not 2000 <= value.year <= 2100:
        raise ValueError("timestamp is outside the years 2000-2100")
    return value


# C0 and C1 controls and DEL: PostgreSQL refuses NUL, and the others break headers, SMS and logs.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Where a control character can hide in JSON bytes: an escape (\n, \u0001, \u007f, \u0085...), a raw DEL,
# or a UTF-8 C1 character (raw C0 characters are invalid JSON). Bytes without any need no per-field search.
_MAYBE_CONTROL = re.compile(rb"\\[bfnrt]|\\u00[0189][0-9A-Fa-f]|\\u007[Ff]|\x7f|\xc2[\x80-\x9f]")


def may_hold_controls(raw: bytes) -> bool:
    """Whether JSON bytes may hold a control character in a string (never False when they do)."""
    # Each alternative of the pattern starts with one of these bytes: three memchr scans (~0.5 µs for an
    # event) rule most events out before the pattern's own scan (~2 µs).
    return (b"\\" in raw or b"\x7f" in raw or b"\xc2" in raw) and _MAYBE_CONTROL.search(raw) is not None


def email(value: str) -> str:
    """``value`` when it is one valid email address (no DNS); ``ValueError`` otherwise."""
    if not _valid_email(value):
        raise ValueError("not a single valid email address")
    return value


# The plain shape: atext letters and digits with single . _ + - between them, then host labels of letters,
# digits and single hyphens (so no "--": no punycode, no IDNA), ending with a letters-only TLD.
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9]+(?:[._+-][A-Za-z0-9]+)*@(?:[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\.)+[A-Za-z]{2,63}")
_SPECIAL_TLDS = frozenset(name.rsplit(".", 1)[-1].lower() for name in SPECIAL_USE_DOMAIN_NAMES)


def plain_email(value: str) -> bool:
    """True only for addresses email-validator accepts, of a shape checked without it (False: ask it)."""
    if len(value) > 254 or not _PLAIN_EMAIL.fullmatch(value):
        return False
    local, domain = value.split("@")
    labels = domain.split(".")
    return len(local) <= 64 and all(len(label) <= 63 for label in labels) and labels[-1].lower() not in _SPECIAL_TLDS


# A shopper's events repeat the same address and number: remembering the verdicts (pure functions of
# the text) took email-validator and phonenumbers from half of the parse time to nearly nothing.
@functools.lru_cache(maxsize=65_536)
def _valid_email(value: str) -> bool:
    if plain_email(value):
        return True
    # email-validator refuses lists ("a,b@x"), controls and bad domains; no DNS at ingest.
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def phone(value: str) -> str:
    """``value`` when it is a possible E.164 number; ``ValueError`` saying why otherwise."""
    problem = _phone_problem(value)
    if problem:
        raise ValueError(problem)
    return value


@functools.lru_cache(maxsize=65_536)
def _phone_problem(value: str) -> str | None:
    if plain_possible_number(value):
        return None
    try:
        number = phonenumbers.parse(value)
    except phonenumbers.NumberParseException:
        return "not an E.164 phone number"
    if not phonenumbers.is_possible_number(number):
        return "not a possible phone number for its country"
    return None


def plain_possible_number(value: str) -> bool:
    """True only for numbers ``phonenumbers.parse`` then ``is_possible_number`` accept (False: ask them).

    For ``+`` and digits (the field's pattern), ``parse`` takes the country code as ``_extract_country_code``
    does (the first of 1-3 digits that is one) and, possibly, strips a national prefix, which only
    shortens a number that was already a possible length (a transform rule could do more: those countries
    are left to ``parse``). So a possible national number as given is the same verdict, at a quarter of
    the cost (~4 µs, not ~17). ``tests/unit/test_event_fields.py`` compares both on every country code.
    """
    digits = value[1:]
    if not value.startswith("+") or not (digits.isascii() and digits.isdigit()) or digits[0] == "0":
        return False  # other digits (Arabic-Indic, say) are parse's to normalise
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            if not national or national[0] == "0" or _transforms_prefix(code):
                return False
            return bool(phonenumbers.is_possible_number(phonenumbers.PhoneNumber(code, int(national))))
    return False


@functools.cache
def _transforms_prefix(code: int) -> bool:
    """Whether parsing may rewrite this country's national numbers (or its metadata is missing)."""
    region = phonenumbers.region_code_for_country_code(code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    return metadata is None or metadata.national_prefix_transform_rule is not None


@functools.lru_cache(maxsize=65_536)
def is_landline(phone: str) -> bool:
    """Whether ``phone`` is a fixed line, which cannot receive an SMS (cached: each send asks, issue 25)."""
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE)


_LOCALE = re.compile(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8}){0,3}")


def locale(value: str) -> str:
    """``value`` when it looks like a locale (``fr``, ``fr-FR``)."""
    if not _LOCALE.fullmatch(value):
        raise ValueError("not a locale such as 'fr' or 'fr-FR'")
    return value


def timezone(value: str) -> str:
    """``value`` when it names an IANA time zone."""
    if value not in _zones():
        raise ValueError("not an IANA timezone such as 'Europe/Paris'")
    return value


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(zoneinfo.available_timezones())
    return _ZONES
