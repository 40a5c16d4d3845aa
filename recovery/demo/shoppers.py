"""How the demo's simulated shoppers answer messages: pure, seeded decisions (no I/O).

Some shoppers come back on their own whatever happens (the holdout shows how many); messages add
clicks and purchases with a channel-dependent probability.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import timedelta

from recovery.states import ChannelName


@dataclass(frozen=True, kw_only=True)
class Response:
    """Probabilities that a shopper clicks a message, buys after clicking, buys without a click."""

    click: float
    buy_after_click: float
    buy_without_click: float


# Rates of the order a shop really sees (a reminder recovers a few percent of carts), so the demo's lift is
# one a shop could observe, and is often "not significant yet" on a few hundred journeys.
RESPONSES = {
    ChannelName.EMAIL: Response(click=0.12, buy_after_click=0.30, buy_without_click=0.01),
    ChannelName.SMS: Response(click=0.15, buy_after_click=0.25, buy_without_click=0.015),
    ChannelName.CALLBACK: Response(click=0.0, buy_after_click=0.0, buy_without_click=0.30),
}
# Share of abandoning shoppers, messaged or not, who come back and buy by themselves: the holdout's rate.
ORGANIC_RETURN = 0.05
# They come back within the demo's virtual day and a half; a longer delay would drop the holdout's
# returns after the demo ends while message-driven orders (minutes) are kept, inflating the lift.
ORGANIC_DELAY_HOURS = (0.5, 12.0)


@dataclass(frozen=True, kw_only=True)
class Reaction:
    """What one shopper does, and how long (in virtual time) after the trigger."""

    click: bool
    buy: bool
    delay: timedelta


def react_to_message(rng: random.Random, channel: ChannelName) -> Reaction:
    """A shopper's answer to one message."""
    response = RESPONSES[channel]
    click = rng.random() < response.click
    buy = rng.random() < (response.buy_after_click if click else response.buy_without_click)
    return Reaction(click=click, buy=buy, delay=timedelta(minutes=rng.uniform(5, 180)))


def organic_return(rng: random.Random) -> Reaction | None:
    """Whether a shopper comes back by themselves after abandoning, and when."""
    if rng.random() >= ORGANIC_RETURN:
        return None
    return Reaction(click=False, buy=True, delay=timedelta(hours=rng.uniform(*ORGANIC_DELAY_HOURS)))


# Share of emailed shoppers who answer "why did you leave?" (its links are in the reminder): enough for the
# demo's free-shipping and guest-checkout steps to be chosen by an answer a few dozen times.
FEEDBACK_RATE = 0.12
FEEDBACK_LINK = re.compile(r"https?://[^\s\"<>]+/f/[A-Za-z0-9._-]+")


def feedback_answer(rng: random.Random, html: str) -> str | None:
    """The "why did you leave?" link this shopper clicks in an email, if any (most shoppers answer nothing)."""
    links = FEEDBACK_LINK.findall(html)
    if not links or rng.random() >= FEEDBACK_RATE:
        return None
    return str(rng.choice(links))
