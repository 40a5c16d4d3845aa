"""Token buckets and claim sizing: pure maths, time passed in."""

from __future__ import annotations

import pytest

from recovery.channels.rate import ChannelRates, TokenBucket
from recovery.steps.scheduler import claim_limit, next_allowed, pacing_full


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


@pytest.mark.parametrize(
    ("room", "claim_batch", "backlog", "concurrency", "fire_s", "lease_s", "paced_full", "limit"),
    [
        (128, 100, 0, 64, 0.1, 120, False, 100),  # idle: a full batch
        (128, 500, 0, 64, 0.1, 120, False, 128),  # never more than the backlog's room
        (40, 100, 88, 64, 0.1, 120, False, 40),  # the room left
        (20, 100, 108, 64, 0.1, 120, False, 0),  # every sender busy, steps queued: wait for room
        (128, 100, 0, 64, 60.0, 120, False, 64),  # one-minute sends: only what starts within half a lease
        (128, 100, 30, 64, 60.0, 120, False, 34),  # ... counting what is already waiting
        (128, 100, 0, 64, 0.1, 120, True, 0),  # a paced channel is full
        (2, 100, 0, 1, 0.1, 120, False, 2),  # a single sender still claims
    ],
)
def test_claims_fit_the_backlog_and_the_lease(
    room: int,
    claim_batch: int,
    backlog: int,
    concurrency: int,
    fire_s: float,
    lease_s: float,
    paced_full: bool,
    limit: int,
) -> None:
    got = claim_limit(
        room=room,
        claim_batch=claim_batch,
        backlog=backlog,
        concurrency=concurrency,
        fire_s=fire_s,
        lease_s=lease_s,
        paced_full=paced_full,
    )
    assert got == limit


@pytest.mark.parametrize(
    ("held", "rate", "lease_s", "full"),
    [
        (59, 1.0, 120, False),
        (60, 1.0, 120, True),  # a minute of sends at 1/s fills half a two-minute lease
        (10_000, None, 120, False),  # unlimited channels never fill
        (1, 0.001, 120, True),  # at least one step may wait
    ],
)
def test_a_paced_channel_is_full_at_half_a_lease(held: int, rate: float | None, lease_s: float, full: bool) -> None:
    assert pacing_full(held, rate, lease_s) is full


@pytest.mark.parametrize(
    ("allowed", "fire_s", "lease_s", "after"),
    [
        (8, 0.1, 120, 9),  # fast against a 2-minute lease: one more at once
        (64, 0.1, 120, 64),  # never above channels.concurrency
        (64, 20.0, 120, 32),  # over an eighth of the lease: halve
        (1, 20.0, 120, 1),  # never below one
        (16, 10.0, 120, 16),  # between a sixteenth and an eighth: hold
        (8, 0.5, 3, 4),  # a 3 s lease (tests) with fires slowed to 0.5 s by a busy machine
    ],
)
def test_fires_at_once_shrink_when_fires_get_long_against_the_lease(
    allowed: int, fire_s: float, lease_s: float, after: int
) -> None:
    assert next_allowed(allowed, concurrency=64, fire_s=fire_s, lease_s=lease_s) == after
