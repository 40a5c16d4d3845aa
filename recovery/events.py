"""The v1 event contract: typed, validated parsing of one Kafka message into an event or a rejection.

A rejection carries a readable reason built from field paths only, never from the input's values, so it
can be logged and published without personal data.
"""

from __future__ import annotations

import functools
import json
import re
import types
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from recovery import event_fields
from recovery.event_fields import CONTROL, may_hold_controls
from recovery.event_fields import ONLY_HTTP as ONLY_HTTP  # these were defined here; their users import them from here
from recovery.event_fields import is_http_url as is_http_url
from recovery.event_fields import is_landline as is_landline
from recovery.event_fields import require_http_url as require_http_url

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


Timestamp = Annotated[AwareDatetime, BeforeValidator(event_fields.require_timestamp_text)]
Money = Annotated[Decimal, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)]
Id = Annotated[str, Field(min_length=1, max_length=128)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _NoControls(_Model):
    """Mixed into the checked copy of each model (``_checked_adapter``): text fields refuse control characters."""

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fields = cls.__pydantic_fields__
            for key, value in data.items():
                if key in fields and isinstance(value, str) and CONTROL.search(value):
                    raise ValueError(f"field '{key}' contains a control character")
        return data


class Consent(_Model):
    email: bool | None = None
    sms: bool | None = None
    phone: bool | None = None


class Customer(_Model):
    id: Id | None = None
    email: Annotated[str, Field(max_length=320), AfterValidator(event_fields.email)] | None = None
    phone: Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$"), AfterValidator(event_fields.phone)] | None = None
    first_name: Annotated[str, Field(max_length=200)] | None = None
    locale: Annotated[str, Field(max_length=35), AfterValidator(event_fields.locale)] | None = None
    timezone: Annotated[str, Field(max_length=64), AfterValidator(event_fields.timezone)] | None = None
    consent: Consent | None = None


# A URL from an event becomes a link in messages and on the agents' page: never javascript: or data:.
HttpUrlText = Annotated[str, AfterValidator(event_fields.require_http_url)]


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
        return event_fields.bounded_year(value)

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
        if may_hold_controls(raw):
            # The checked copy raises with the reason when a text holds a control character; when none does
            # (a "\\n" in a Windows path, a control in a field the contract ignores), the published classes
            # give the same event.
            _checked_adapter().validate_json(raw)
        return _ADAPTER.validate_json(raw)
    except ValidationError as exc:
        try:
            return _explain(raw, exc)
        except RecursionError:
            return Rejection(reason="not JSON: nested too deeply")
    except RecursionError:
        return Rejection(reason="not JSON: nested too deeply")


@functools.cache
def _checked_adapter() -> TypeAdapter[Any]:
    """The contract as a copy of each model that also refuses control characters in its text fields.

    Only bytes that may hold one (``may_hold_controls``) go through it. The published models have no
    per-object check: a Python call per object (six per cart event) was a quarter of pydantic's work.
    Each copy is a subclass of the same name, so the rejection reasons are the same as those models'.
    """
    copies: dict[type[_Model], type[_Model]] = {}

    def copy(model: type[_Model]) -> type[_Model]:
        if model not in copies:
            swapped = {name: (_swap(field.annotation, copy), field) for name, field in model.model_fields.items()}
            nested = {  # only the fields holding models are redeclared; the rest are inherited as they are
                name: (kind, ... if field.is_required() else field.default)
                for name, (kind, field) in swapped.items()
                if kind is not field.annotation
            }
            bases = (model, _NoControls)
            copies[model] = create_model(model.__name__, __base__=bases, __module__=__name__, **nested)  # type: ignore[call-overload]
        return copies[model]

    branches = tuple(copy(model) for model in get_args(Event))
    checked: Any = Annotated[Union[branches], Field(discriminator="type")]  # noqa: UP007 (a runtime tuple of types)
    return TypeAdapter(checked)


def _swap(annotation: Any, copy: Any) -> Any:
    """``annotation`` with each event model in it replaced by ``copy(model)`` (``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, _Model):
        return copy(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list:
        swapped = _swap(args[0], copy)
        return annotation if swapped is args[0] else list[swapped]  # type: ignore[valid-type]
    if origin in (Union, types.UnionType):
        parts = tuple(_swap(arg, copy) for arg in args)
        return annotation if all(a is b for a, b in zip(parts, args, strict=True)) else Union[parts]  # noqa: UP007
    return annotation


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
    if not isinstance(event_type, str) or event_type not in {t.value for t in EventType}:
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
