"""How much the scheduler claims and fires at once: pure sizing against the lease (no I/O, no clock).

A claim waiting past its lease, or a send still in flight when it runs out, could be taken over by another
replica; these keep claims and concurrent fires small enough that this stays rare.
"""

from __future__ import annotations


def claim_limit(
    *,
    room: int,
    claim_batch: int,
    backlog: int,
    concurrency: int,
    fire_s: float,
    lease_s: float,
    paced_full: bool,
) -> int:
    """How many steps to claim now: no more than fits in the backlog, and no more than the senders can start
    within half the lease (a claim waiting past its lease would be taken over by another replica and wasted).

    ``fire_s`` is the average time one fire takes; ``paced_full`` says a rate-limited channel already holds
    all it can send in half a lease, so claiming more would only let claims expire.
    """
    if paced_full or not room_for_a_claim(room, concurrency):
        return 0
    startable = int(concurrency * (lease_s / 2) / max(fire_s, 1e-3)) - backlog
    return max(0, min(room, claim_batch, startable))


def room_for_a_claim(room: int, concurrency: int) -> bool:
    """Whether ``room`` free places in the backlog are worth a claim.

    With less room than a quarter of the backlog (2 x concurrency), every sender is busy and steps are queued:
    claiming a few at a time would cost a query per finished send for nothing.
    """
    return room >= max(1, concurrency // 2)


def next_allowed(allowed: int, *, concurrency: int, fire_s: float, lease_s: float) -> int:
    """How many fires may run at once after one more finished, given the average fire time ``fire_s``.

    The lease bounds claim-to-send: a send still in flight when its lease runs out may be repeated by the
    replica that takes the step over. Fires slow down when the process is short of CPU or connections, and
    more of them at once only slows each one further, so: halve the fires in flight while one takes more
    than an eighth of the lease, add one back while it takes less than a sixteenth, up to ``concurrency``.
    """
    if fire_s > lease_s / 8:
        return max(1, allowed // 2)
    if fire_s < lease_s / 16:
        return min(concurrency, allowed + 1)
    return min(concurrency, allowed)


def pacing_full(held: int, rate: float | None, lease_s: float) -> bool:
    """Whether ``held`` steps of a channel sending ``rate`` per second already fill half a lease."""
    return rate is not None and held >= max(1.0, rate * lease_s / 2)
