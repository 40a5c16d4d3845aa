"""Which recovery message gets the credit for an order: pure attribution over sends, clicks and orders.

Two questions are kept apart on purpose, because marketers read them differently:
"clicked and bought" (``ConversionKind.CLICKED``) and "bought after a message, no click"
(``ConversionKind.SENT_NO_CLICK``).

Rules, for both models:

* the caller passes the messages and clicks of the order's own cart or journey;
* a message sent after the order, or a click after the order, never counts (equal timestamps count:
  the click happened no later than the order);
* windows are inclusive: a click exactly ``click_window`` before the order still counts;
* a click on a message absent from ``messages`` is ignored, since nothing could be credited;
* no qualifying message means no conversion (``None``): the order was not recovered by us.

``LAST_CLICK`` credits the message with the most recent click within ``click_window`` (``CLICKED``);
failing that, the most recent message sent within ``send_window`` (``SENT_NO_CLICK``). A click older
than ``click_window`` does not count under this model, even on that fallback message.

``LAST_SEND`` credits only the most recent message sent within ``send_window``; it is ``CLICKED`` when
that message was clicked before the order (whenever), otherwise ``SENT_NO_CLICK``. An older clicked
message never takes the credit from a later send.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from recovery.messages import MessageIdentity
from recovery.states import ChannelName, ConversionKind

DEFAULT_CLICK_WINDOW = timedelta(days=5)
DEFAULT_SEND_WINDOW = timedelta(hours=24)


class AttributionModel(StrEnum):
    """How an order is credited to a recovery message."""

    LAST_CLICK = "last_click"
    LAST_SEND = "last_send"


@dataclass(frozen=True, kw_only=True)
class SentMessage(MessageIdentity):
    """A recovery message that left for the shopper."""

    template: str
    sent_at: datetime


@dataclass(frozen=True, kw_only=True)
class Click:
    """A tracked click on a recovery message's link."""

    message_id: str
    clicked_at: datetime


@dataclass(frozen=True, kw_only=True)
class Order:
    """An order placed for a cart."""

    order_id: str
    cart_id: str
    value: Decimal
    currency: str
    occurred_at: datetime


@dataclass(frozen=True, kw_only=True)
class Conversion:
    """An order credited to one recovery message; ``time_to_convert`` runs from that message's send."""

    kind: ConversionKind
    order_id: str
    message_id: str
    flow: str
    step: str
    channel: ChannelName
    template: str
    revenue: Decimal
    currency: str
    time_to_convert: timedelta


def attribute(
    order: Order,
    messages: Iterable[SentMessage],
    clicks: Iterable[Click],
    model: AttributionModel,
    *,
    click_window: timedelta = DEFAULT_CLICK_WINDOW,
    send_window: timedelta = DEFAULT_SEND_WINDOW,
) -> Conversion | None:
    """Credit ``order`` to one of the cart's messages under ``model``, or ``None`` if none qualifies."""
    at = order.occurred_at
    sent = {m.message_id: m for m in messages if m.sent_at <= at}
    # Clicks after the order, or on messages we did not send before it, cannot explain the order.
    prior_clicks = [c for c in clicks if c.clicked_at <= at and c.message_id in sent]
    latest_send = _latest_send(sent.values(), at, send_window)

    if model is AttributionModel.LAST_CLICK:
        in_window = [c for c in prior_clicks if at - c.clicked_at <= click_window]
        if in_window:
            # Ties on the click time go to the later send, then the id, so reruns give the same answer.
            best = max(in_window, key=lambda c: (c.clicked_at, sent[c.message_id].sent_at, c.message_id))
            return _conversion(ConversionKind.CLICKED, order, sent[best.message_id])
        if latest_send is None:
            return None
        return _conversion(ConversionKind.SENT_NO_CLICK, order, latest_send)

    if latest_send is None:
        return None
    clicked = any(c.message_id == latest_send.message_id for c in prior_clicks)
    kind = ConversionKind.CLICKED if clicked else ConversionKind.SENT_NO_CLICK
    return _conversion(kind, order, latest_send)


def apply_refund(revenue: Decimal, refunded: Decimal) -> Decimal:
    """Revenue left after a refund, never below zero (refunds may include shipping or goodwill)."""
    if refunded < 0:
        raise ValueError(f"refund {refunded} is negative: pass the refunded amount as a positive number")
    return max(revenue - refunded, Decimal(0))


def _latest_send(messages: Iterable[SentMessage], at: datetime, window: timedelta) -> SentMessage | None:
    candidates = [m for m in messages if at - m.sent_at <= window]
    if not candidates:
        return None
    return max(candidates, key=lambda m: (m.sent_at, m.message_id))


def _conversion(kind: ConversionKind, order: Order, message: SentMessage) -> Conversion:
    return Conversion(
        kind=kind,
        order_id=order.order_id,
        message_id=message.message_id,
        flow=message.flow,
        step=message.step,
        channel=message.channel,
        template=message.template,
        revenue=order.value,
        currency=order.currency,
        time_to_convert=order.occurred_at - message.sent_at,
    )
