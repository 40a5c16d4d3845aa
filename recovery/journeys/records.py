"""The state records of carts, customers and journeys, as read from the store."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from recovery.events import Cart
from recovery.states import JourneyStatus

T = TypeVar("T")

GUEST_PREFIX = "cart:"  # a shopper without a platform id is known by their cart


def guest_key(cart_id: str) -> str:
    """The customer key of a guest shopper: their cart."""
    return GUEST_PREFIX + cart_id


def guest_cart_id(customer_key: str) -> str | None:
    """The cart a guest customer key names; None for a platform customer id."""
    return customer_key[len(GUEST_PREFIX) :] if customer_key.startswith(GUEST_PREFIX) else None


@dataclass(frozen=True, kw_only=True)
class JourneyRow:
    """The journey facts a send decision reads."""

    journey_id: str
    cart_id: str
    flow: str
    status: JourneyStatus
    holdout: bool
    customer_key: str
    store: str
    started_at: datetime
    messages_sent: int
    clicked: bool
    context: dict[str, Any]
    flow_version: int = 0  # the flow version the journey started with
    feedback: str | None = None  # the latest "why did you leave?" answer, when the firing path read it


@dataclass(frozen=True, kw_only=True)
class CartState:
    """The latest known state of one cart."""

    cart_id: str
    store: str
    customer_key: str
    # A dict as stored, or the event's Cart model until saved (dumped once per batch, not per event).
    cart: dict[str, Any] | Cart | None = None
    value: Decimal | None = None
    currency: str | None = None
    item_count: int = 0
    checkout_step: str | None = None
    payment: dict[str, Any] | None = None
    first_event_at: datetime
    last_event_at: datetime
    abandon_at: datetime | None = None
    abandoned_at: datetime | None = None
    ordered_at: datetime | None = None
    order_id: str | None = None
    order_value: Decimal | None = None
    refunded_value: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class CustomerState:
    """Contact details and consent of one customer; the latest non-null values win."""

    customer_key: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    consent_email: bool | None = None
    consent_sms: bool | None = None
    consent_phone: bool | None = None
    updated_at: datetime


CART_FIELDS = tuple(f.name for f in fields(CartState))
CUSTOMER_FIELDS = tuple(f.name for f in fields(CustomerState))


def field_defaults(cls: type[Any]) -> dict[str, Any]:
    """Every field of a record class with its default (None for the required ones), in field order."""
    return {f.name: None if f.default is MISSING else f.default for f in fields(cls)}


def frozen(cls: type[T], values: dict[str, Any]) -> T:
    """A ``CartState`` / ``CustomerState`` from a dict holding every one of its fields, without ``__init__``.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``: building one per cart
    and per customer at every step of ingest was ~6 % of its CPU. These classes have no ``__post_init__``
    and no slots, so filling the instance's ``__dict__`` at once gives the same object (equality, repr,
    hash). ``values`` is copied in (one C-level update).
    """
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance
