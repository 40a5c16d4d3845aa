"""Claim sizing and fires at once against the lease: pure maths, times passed in."""

from __future__ import annotations

import pytest

from recovery.steps.pacing import claim_limit, next_allowed, pacing_full


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
