"""Token buckets: pure maths, time passed in."""

from __future__ import annotations

import pytest

from recovery.channels.rate import ChannelRates, TokenBucket


@pytest.mark.parametrize(
    ("rate", "burst", "take_at", "sent"),
    [
        (1.0, None, [0.0, 0.0, 0.5, 1.0, 1.0], [True, False, False, True, False]),  # 1/s, no saving up
        (10.0, None, [0.0] * 11, [True] * 10 + [False]),  # a second's worth at once
        (2.0, 4.0, [0.0] * 5, [True] * 4 + [False]),  # explicit burst
        (0.5, None, [0.0, 1.0, 2.0, 3.9, 4.0], [True, False, True, False, True]),  # one every 2 s
        (1.0, None, [0.0, 100.0, 100.0], [True, True, False]),  # an idle hour saves only the burst
        (1.0, None, [5.0, 4.0, 4.5], [True, False, False]),  # a clock running backwards adds nothing
    ],
)
def test_a_bucket_lets_through_its_rate_and_burst(
    rate: float, burst: float | None, take_at: list[float], sent: list[bool]
) -> None:
    bucket = TokenBucket.full(rate, take_at[0], burst)
    results = []
    for now in take_at:
        taken, bucket = bucket.take(now)
        results.append(taken)
    assert results == sent


@pytest.mark.parametrize(
    ("rate", "takes", "now", "wait"),
    [
        (1.0, 1, 0.0, 1.0),  # empty: a full second
        (1.0, 1, 0.25, 0.75),
        (4.0, 4, 0.0, 0.25),
        (1.0, 0, 0.0, 0.0),  # a token is there
    ],
)
def test_the_wait_is_the_time_to_the_next_token(rate: float, takes: int, now: float, wait: float) -> None:
    bucket = TokenBucket.full(rate, 0.0)
    for _ in range(takes):
        _, bucket = bucket.take(0.0)
    assert bucket.wait(now) == pytest.approx(wait)


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket.full(0, 0.0)


def test_only_limited_channels_are_held_back() -> None:
    rates = ChannelRates({"sms": 1.0}, now=0.0)
    assert [rates.take("sms", 0.0), rates.take("sms", 0.0)] == [True, False]
    assert all(rates.take("email", 0.0) for _ in range(1000))
    assert (rates.wait("sms", 0.0), rates.wait("email", 0.0)) == (1.0, 0.0)
    assert (rates.rate("sms"), rates.rate("email")) == (1.0, None)
