"""The v1 event contract: typed, validated parsing of one Kafka message into an event or a rejection.

A rejection carries a readable reason built from field paths only, never from the input's values, so it
can be logged and published without personal data.
"""

from __future__ import annotations

import functools
import json
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

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
    if not is_http_url(value):
        raise ValueError(ONLY_HTTP)
    return value


MAX_MONEY = Decimal("1000000000")  # a cart worth more than a billion is a bug, not a shopper
MAX_QUANTITY = 100_000


class EventType(StrEnum):
    """Every input event type of the v1 contract."""

    CART_UPDATED = "cart.updated"
    CHECKOUT_STEP = "checkout.step"
    PAYMENT_FAILED = "payment.failed"
    ORDER_COMPLETED = "order.completed"
    ORDER_REFUNDED = "order.refunded"
    CONSENT_CHANGED = "consent.changed"


class CheckoutStep(StrEnum):
    """Checkout steps, in funnel order."""

    CART = "cart"
    ACCOUNT = "account"
    ADDRESS = "address"
    SHIPPING = "shipping"
    PAYMENT = "payment"
    REVIEW = "review"


CHECKOUT_ORDER = list(CheckoutStep)


class PaymentFailureReason(StrEnum):
    """Why a payment attempt failed."""

    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    AUTHENTICATION_FAILED = "authentication_failed"
    EXPIRED_CARD = "expired_card"
    PROCESSING_ERROR = "processing_error"
    OTHER = "other"


def _require_text(value: Any) -> Any:
    # pydantic would accept a Unix number as a datetime; the contract says RFC 3339 text.
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string with an offset")
    return value


def _bounded_year(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2100:
        raise ValueError("timestamp is outside the years 2000-2100")
    return value


# C0 and C1 controls and DEL: PostgreSQL refuses NUL, and the others break headers, SMS and logs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LOCALE = re.compile(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8}){0,3}")


def _email(value: str) -> str:
    if not _valid_email(value):
        raise ValueError("not a single valid email address")
    return value


# A shopper's events repeat the same address and number: remembering the verdicts (pure functions of
# the text) took email-validator and phonenumbers from half of the parse time to nearly nothing.
@functools.lru_cache(maxsize=65_536)
def _valid_email(value: str) -> bool:
    # email-validator refuses lists ("a,b@x"), controls and bad domains; no DNS at ingest.
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _phone(value: str) -> str:
    problem = _phone_problem(value)
    if problem:
        raise ValueError(problem)
    return value


@functools.lru_cache(maxsize=65_536)
def _phone_problem(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value)
    except phonenumbers.NumberParseException:
        return "not an E.164 phone number"
    if not phonenumbers.is_possible_number(number):
        return "not a possible phone number for its country"
    return None


def _locale(value: str) -> str:
    if not _LOCALE.fullmatch(value):
        raise ValueError("not a locale such as 'fr' or 'fr-FR'")
    return value


def _timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError("not an IANA timezone such as 'Europe/Paris'")
    return value


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(zoneinfo.available_timezones())
    return _ZONES


@functools.lru_cache(maxsize=65_536)
def is_landline(phone: str) -> bool:
    """Whether ``phone`` is a fixed line, which cannot receive an SMS (cached: each send asks, issue 25)."""
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE)


Timestamp = Annotated[AwareDatetime, BeforeValidator(_require_text)]
Money = Annotated[Decimal, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)]
Id = Annotated[str, Field(min_length=1, max_length=128)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


# Where a control character can hide in JSON bytes: an escape (\n, \u0001, \u007f, \u0085...), a raw DEL,
# or a UTF-8 C1 character (raw C0 characters are invalid JSON). Bytes without any need no per-field search.
_MAYBE_CONTROL = re.compile(rb"\\[bfnrt]|\\u00[0189][0-9A-Fa-f]|\\u007[Ff]|\x7f|\xc2[\x80-\x9f]")
_NO_CONTROLS = {"no_controls": True}  # validation context: the bytes were checked as a whole


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and not (info.context and info.context.get("no_controls")):
            fields = cls.__pydantic_fields__
            for key, value in data.items():
                if key in fields and isinstance(value, str) and _CONTROL.search(value):
                    raise ValueError(f"field '{key}' contains a control character")
        return data


class Consent(_Model):
    email: bool | None = None
    sms: bool | None = None
    phone: bool | None = None


class Customer(_Model):
    id: Id | None = None
    email: Annotated[str, Field(max_length=320), AfterValidator(_email)] | None = None
    phone: Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$"), AfterValidator(_phone)] | None = None
    first_name: Annotated[str, Field(max_length=200)] | None = None
    locale: Annotated[str, Field(max_length=35), AfterValidator(_locale)] | None = None
    timezone: Annotated[str, Field(max_length=64), AfterValidator(_timezone)] | None = None
    consent: Consent | None = None


# A URL from an event becomes a link in messages and on the agents' page: never javascript: or data:.
HttpUrlText = Annotated[str, AfterValidator(require_http_url)]


class CartItem(_Model):
    sku: Annotated[str, Field(max_length=256)]
    name: Annotated[str, Field(max_length=1000)]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
    unit_price: Money
    image_url: HttpUrlText | None = None
    url: HttpUrlText | None = None


class Cart(_Model):
    currency: Currency
    value: Money
    items: list[CartItem]
    restore_url: HttpUrlText | None = None
    shipping_cost: Money | None = None


class Payment(_Model):
    reason: PaymentFailureReason
    method: Annotated[str, Field(max_length=64)] | None = None
    provider_code: Annotated[str, Field(max_length=128)] | None = None
    amount: Money | None = None


class Order(_Model):
    id: Id
    value: Money
    currency: Currency
    cart_id: Id | None = None


class _Envelope(_Model):
    id: Id
    occurred_at: Timestamp
    store: Annotated[str, Field(min_length=1, max_length=128)] = "default"
    customer: Customer | None = None

    @field_validator("occurred_at")
    @classmethod
    def _sane_year(cls, value: datetime) -> datetime:
        return _bounded_year(value)

    @field_validator("store", mode="before")
    @classmethod
    def _default_store(cls, value: object) -> object:
        return "default" if value is None else value  # "optional, default 'default'": null is the default too


class CartUpdated(_Envelope):
    type: Literal[EventType.CART_UPDATED]
    cart_id: Id
    cart: Cart


class CheckoutStepReached(_Envelope):
    type: Literal[EventType.CHECKOUT_STEP]
    cart_id: Id
    checkout_step: CheckoutStep
    cart: Cart | None = None


class PaymentFailed(_Envelope):
    type: Literal[EventType.PAYMENT_FAILED]
    cart_id: Id
    payment: Payment
    cart: Cart | None = None


class OrderCompleted(_Envelope):
    type: Literal[EventType.ORDER_COMPLETED]
    cart_id: Id
    order: Order


class OrderRefunded(_Envelope):
    type: Literal[EventType.ORDER_REFUNDED]
    cart_id: Id
    order: Order


class ConsentChanged(_Envelope):
    type: Literal[EventType.CONSENT_CHANGED]
    cart_id: Id | None = None
    customer: Customer

    @model_validator(mode="after")
    def _says_whose_consent(self) -> ConsentChanged:
        # Without these it would change nobody's consent, silently: reject it with the reason instead.
        if self.customer.consent is None:
            raise ValueError("consent.changed needs customer.consent")
        if not self.customer.id and not self.cart_id:
            raise ValueError("consent.changed needs customer.id (or, for a guest, cart_id)")
        return self


Event = CartUpdated | CheckoutStepReached | PaymentFailed | OrderCompleted | OrderRefunded | ConsentChanged
CartEvent = CartUpdated | CheckoutStepReached | PaymentFailed | OrderCompleted | OrderRefunded

_ADAPTER: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="type")])
_KNOWN_TYPES = ", ".join(t.value for t in EventType)
_TYPE_SHAPE = re.compile(r"[a-z][a-z_]{0,30}\.[a-z][a-z_]{0,30}")


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """Why a message is not a valid event; safe to log (no input values)."""

    reason: str
    event_id: str | None = None
    event_type: str | None = None


def parse_event(raw: bytes | None) -> Event | Rejection:
    """Parse one message body; return the typed event or a ``Rejection`` with a readable reason."""
    if not raw:
        return Rejection(reason="empty message: expected one JSON object")
    try:
        return _ADAPTER.validate_json(raw, context=None if _MAYBE_CONTROL.search(raw) else _NO_CONTROLS)
    except ValidationError as exc:
        try:
            return _explain(raw, exc)
        except RecursionError:
            return Rejection(reason="not JSON: nested too deeply")
    except RecursionError:
        return Rejection(reason="not JSON: nested too deeply")


def _explain(raw: bytes, exc: ValidationError) -> Rejection:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as json_exc:
        return Rejection(reason=f"not JSON: {type(json_exc).__name__} ({_short(str(json_exc))})")
    if not isinstance(document, dict):
        return Rejection(reason=f"not a JSON object: got a JSON {type(document).__name__}")
    event_id = document.get("id") if isinstance(document.get("id"), str) else None
    event_type = document.get("type")
    if "type" not in document:
        return Rejection(reason="missing field 'type'", event_id=event_id)
    if event_type not in {t.value for t in EventType}:
        # Echo the type only when it looks like one: a platform bug could put personal data there.
        shown = repr(event_type) if isinstance(event_type, str) and _TYPE_SHAPE.fullmatch(event_type) else "(not shown)"
        return Rejection(reason=f"unknown event type {shown} (expected one of: {_KNOWN_TYPES})", event_id=event_id)
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"][1:])  # drop the union tag
        if error["type"] == "missing":
            problems.append(f"missing field '{location}'")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"field '{location}': {message}" if location else message)
    return Rejection(reason="; ".join(problems[:5]), event_id=event_id, event_type=str(event_type))


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
