"""Attribution of orders to recovery messages, as tables of sends and clicks relative to the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from recovery.attribution.credit import (
    AttributionModel,
    Click,
    Conversion,
    Order,
    SentMessage,
    apply_refund,
    attribute,
)
from recovery.states import ChannelName, ConversionKind

ORDER_AT = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
ORDER = Order(order_id="o-1", cart_id="c-1", value=Decimal("89.90"), currency="EUR", occurred_at=ORDER_AT)
H = timedelta(hours=1)
D = timedelta(days=1)

LAST_CLICK = AttributionModel.LAST_CLICK
LAST_SEND = AttributionModel.LAST_SEND
CLICKED = ConversionKind.CLICKED
SENT_NO_CLICK = ConversionKind.SENT_NO_CLICK


def _message(message_id: str, before_order: timedelta) -> SentMessage:
    return SentMessage(
        message_id=message_id,
        journey_id="j-1",
        cart_id="cart-1",
        flow="abandoned_cart",
        step=f"step_{message_id}",
        channel=ChannelName.EMAIL,
        template=f"tpl_{message_id}",
        sent_at=ORDER_AT - before_order,
    )


def _click(message_id: str, before_order: timedelta) -> Click:
    return Click(message_id=message_id, clicked_at=ORDER_AT - before_order)


# Each row: sends and clicks as (message id, how long before the order; negative = after the order),
# and the expected (kind, credited message) or None. Default windows: click 5 days, send 24 hours.
CASES = [
    pytest.param(LAST_CLICK, [("m1", 2 * D)], [("m1", 2 * D)], (CLICKED, "m1"), id="click-2d-ago-credits-it"),
    pytest.param(LAST_CLICK, [("m1", 5 * D)], [("m1", 5 * D)], (CLICKED, "m1"), id="click-exactly-5d-counts"),
    pytest.param(LAST_CLICK, [("m1", 6 * D)], [("m1", 6 * D)], None, id="click-6d-no-recent-send-is-none"),
    pytest.param(
        LAST_CLICK,
        [("m1", 6 * D), ("m2", 3 * H)],
        [("m1", 6 * D)],
        (SENT_NO_CLICK, "m2"),
        id="click-6d-falls-back-to-send-within-24h",
    ),
    pytest.param(
        LAST_CLICK,
        [("m1", 6 * D), ("m2", 30 * H)],
        [("m1", 6 * D)],
        None,
        id="click-6d-and-send-30h-ago-is-none",
    ),
    pytest.param(LAST_CLICK, [], [], None, id="no-message-is-none"),
    pytest.param(LAST_SEND, [], [], None, id="no-message-is-none-last-send"),
    pytest.param(LAST_CLICK, [("m1", -H)], [("m1", -2 * H)], None, id="message-after-order-is-none"),
    pytest.param(LAST_SEND, [("m1", -H)], [], None, id="message-after-order-is-none-last-send"),
    pytest.param(
        LAST_CLICK,
        [("m1", 2 * H)],
        [("m1", -H)],
        (SENT_NO_CLICK, "m1"),
        id="click-after-order-does-not-count",
    ),
    pytest.param(
        LAST_CLICK,
        [("m1", 3 * D), ("m2", 1 * D)],
        [("m1", 3 * D), ("m2", 1 * D)],
        (CLICKED, "m2"),
        id="two-clicked-latest-click-wins",
    ),
    pytest.param(
        LAST_CLICK,
        [("m1", 3 * D), ("m2", 1 * D)],
        [("m2", 20 * H), ("m1", 2 * H)],
        (CLICKED, "m1"),
        id="latest-click-beats-latest-send",
    ),
    pytest.param(
        LAST_CLICK,
        [("m1", 3 * D), ("m2", 2 * H)],
        [("m1", 3 * D)],
        (CLICKED, "m1"),
        id="click-in-window-beats-unclicked-later-send",
    ),
    pytest.param(LAST_CLICK, [("m1", 0 * H)], [("m1", 0 * H)], (CLICKED, "m1"), id="same-instant-counts"),
    pytest.param(LAST_CLICK, [("m1", 3 * D)], [("ghost", 2 * D)], None, id="click-on-unknown-message-ignored"),
    pytest.param(LAST_SEND, [("m1", 2 * H)], [("m1", H)], (CLICKED, "m1"), id="last-send-clicked"),
    pytest.param(LAST_SEND, [("m1", 2 * H)], [], (SENT_NO_CLICK, "m1"), id="last-send-not-clicked"),
    pytest.param(
        LAST_SEND,
        [("m1", 2 * H)],
        [("m1", -H)],
        (SENT_NO_CLICK, "m1"),
        id="last-send-click-after-order-does-not-count",
    ),
    pytest.param(
        LAST_SEND,
        [("m1", 3 * D), ("m2", 2 * H)],
        [("m1", 3 * D)],
        (SENT_NO_CLICK, "m2"),
        id="last-send-older-click-does-not-take-credit",
    ),
    pytest.param(LAST_SEND, [("m1", 30 * H)], [("m1", 29 * H)], None, id="last-send-outside-24h-is-none"),
    pytest.param(LAST_SEND, [("m1", 24 * H)], [], (SENT_NO_CLICK, "m1"), id="last-send-exactly-24h-counts"),
]


@pytest.mark.parametrize(("model", "sends", "clicks", "expected"), CASES)
def test_order_is_credited_to_the_message_the_model_picks(
    model: AttributionModel,
    sends: list[tuple[str, timedelta]],
    clicks: list[tuple[str, timedelta]],
    expected: tuple[ConversionKind, str] | None,
) -> None:
    """Each row's order goes to the expected message with the expected kind, or to nothing."""
    conversion = attribute(ORDER, [_message(m, t) for m, t in sends], [_click(m, t) for m, t in clicks], model)
    if expected is None:
        assert conversion is None
    else:
        assert conversion is not None
        assert (conversion.kind, conversion.message_id) == expected


def test_conversion_carries_the_message_and_the_order_revenue() -> None:
    """The credited message's flow, step, channel and template are reported with the order's value."""
    conversion = attribute(ORDER, [_message("m1", 26 * H)], [_click("m1", 25 * H)], LAST_CLICK)
    assert conversion == Conversion(
        kind=CLICKED,
        order_id="o-1",
        message_id="m1",
        flow="abandoned_cart",
        step="step_m1",
        channel=ChannelName.EMAIL,
        template="tpl_m1",
        revenue=Decimal("89.90"),
        currency="EUR",
        time_to_convert=26 * H,
    )


WINDOW_CASES = [
    pytest.param(LAST_CLICK, D, D, [("m1", 2 * D)], [("m1", 2 * D)], None, id="1d-click-window-drops-2d-click"),
    pytest.param(
        LAST_CLICK,
        D,
        3 * D,
        [("m1", 2 * D)],
        [("m1", 2 * D)],
        (SENT_NO_CLICK, "m1"),
        id="click-outside-window-is-no-click-even-on-fallback",
    ),
    pytest.param(
        LAST_SEND,
        D,
        3 * D,
        [("m1", 2 * D)],
        [("m1", 2 * D)],
        (CLICKED, "m1"),
        id="3d-send-window-keeps-2d-send",
    ),
    pytest.param(LAST_SEND, D, H, [("m1", 2 * H)], [], None, id="1h-send-window-drops-2h-send"),
]


@pytest.mark.parametrize(("model", "click_window", "send_window", "sends", "clicks", "expected"), WINDOW_CASES)
def test_windows_are_configurable(
    model: AttributionModel,
    click_window: timedelta,
    send_window: timedelta,
    sends: list[tuple[str, timedelta]],
    clicks: list[tuple[str, timedelta]],
    expected: tuple[ConversionKind, str] | None,
) -> None:
    """Custom click and send windows replace the 5-day and 24-hour defaults."""
    conversion = attribute(
        ORDER,
        [_message(m, t) for m, t in sends],
        [_click(m, t) for m, t in clicks],
        model,
        click_window=click_window,
        send_window=send_window,
    )
    got = None if conversion is None else (conversion.kind, conversion.message_id)
    assert got == expected


@pytest.mark.parametrize(
    ("revenue", "refunded", "left"),
    [
        pytest.param("100.00", "30.00", "70.00", id="partial-refund"),
        pytest.param("100.00", "100.00", "0.00", id="full-refund"),
        pytest.param("100.00", "150.00", "0", id="refund-above-revenue-stops-at-zero"),
        pytest.param("0", "0", "0", id="nothing-to-refund"),
    ],
)
def test_refund_reduces_revenue_never_below_zero(revenue: str, refunded: str, left: str) -> None:
    """Refunded revenue is subtracted and floors at zero."""
    result = apply_refund(Decimal(revenue), Decimal(refunded))
    assert result == Decimal(left)


def test_negative_refund_is_refused() -> None:
    """A negative refund would add revenue, so it is an input error."""
    with pytest.raises(ValueError, match="negative"):
        apply_refund(Decimal("10"), Decimal("-1"))
