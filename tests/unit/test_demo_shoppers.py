"""The demo's simulated shoppers buy at rates a shop could really see, with and without a message."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from recovery.demo.shoppers import organic_return, react_to_message
from recovery.states import ChannelName

SHOPPERS = 20_000


def test_shoppers_come_back_on_their_own_at_a_few_percent_within_the_demo() -> None:
    """About 5 % of abandoning shoppers buy with no message, all within the demo's virtual day and a half."""
    rng = random.Random(7)
    returns = [r for r in (organic_return(rng) for _ in range(SHOPPERS)) if r is not None]
    assert 0.03 < len(returns) / SHOPPERS < 0.08
    assert max(r.delay for r in returns) <= timedelta(hours=12)


@pytest.mark.parametrize(("channel", "low", "high"), [(ChannelName.EMAIL, 0.02, 0.08), (ChannelName.SMS, 0.03, 0.09)])
def test_a_message_adds_a_few_percent_of_orders(channel: ChannelName, low: float, high: float) -> None:
    """A reminder recovers a few percent of carts, not a quarter of them."""
    rng = random.Random(11)
    bought = sum(react_to_message(rng, channel).buy for _ in range(SHOPPERS))
    assert low < bought / SHOPPERS < high
