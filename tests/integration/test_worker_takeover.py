"""Worker heartbeats: a dead worker's claims are taken over within seconds, a live worker's never."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.journeys import journey_rows
from recovery.steps import step_rows, worker_rows
from tests.integration.test_store import LEASE, NOW, new_journey

DEAD_AFTER = timedelta(seconds=5)


async def claim(engine: AsyncEngine, worker: str, seconds: float) -> list[str]:
    async with engine.begin() as conn:
        found = await step_rows.claim_due(
            conn, now=NOW + timedelta(seconds=seconds), worker=worker, limit=10, lease=LEASE, dead_after=DEAD_AFTER
        )
    return [step.step_id for step in found]


async def test_claims_of_a_worker_whose_heartbeat_stopped_are_taken_over_in_seconds(engine: AsyncEngine) -> None:
    """Worker A beats, claims, dies; 5 s after its last beat B takes the step over (the lease is 2 min)."""
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey(step_delays={"reminder": timedelta(0)})], NOW)
        await worker_rows.beat(conn, "a", NOW)
    assert await claim(engine, "a", 0) == ["journey-1:reminder"]
    assert await claim(engine, "b", 4) == [], "A's last beat is recent: its claim stands"
    assert await claim(engine, "b", 5) == ["journey-1:reminder"]


async def test_a_worker_that_keeps_beating_keeps_its_claims(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey(step_delays={"reminder": timedelta(0)})], NOW)
        await worker_rows.beat(conn, "a", NOW)
    assert await claim(engine, "a", 0) == ["journey-1:reminder"]
    async with engine.begin() as conn:
        await worker_rows.beat(conn, "a", NOW + timedelta(seconds=30))
    assert await claim(engine, "b", 31) == []


async def test_a_cleanly_stopped_workers_leftover_claims_are_taken_over_at_once(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey(step_delays={"reminder": timedelta(0)})], NOW)
        await worker_rows.beat(conn, "a", NOW)
    assert await claim(engine, "a", 0) == ["journey-1:reminder"]
    async with engine.begin() as conn:
        await worker_rows.stopped(conn, "a")
    assert await claim(engine, "b", 0.5) == ["journey-1:reminder"]


async def test_a_worker_never_takes_over_its_own_claims_after_an_outage(engine: AsyncEngine) -> None:
    """After a database outage its own beat is stale too, but its sends may still be in flight."""
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey(step_delays={"reminder": timedelta(0)})], NOW)
        await worker_rows.beat(conn, "a", NOW)
    assert await claim(engine, "a", 0) == ["journey-1:reminder"]
    assert await claim(engine, "a", 30) == []


async def test_takeovers_and_due_steps_are_both_claimed(engine: AsyncEngine) -> None:
    """The claim is two ordered queries (takeovers, then the due arm): each still finds its steps, and the
    limit counts them together, takeovers first."""
    async with engine.begin() as conn:
        await journey_rows.create(conn, [new_journey(step_delays={"reminder": timedelta(0)})], NOW)
        await worker_rows.beat(conn, "a", NOW)
    assert await claim(engine, "a", 0) == ["journey-1:reminder"]  # then A dies
    later = [new_journey(f"journey-{i}", cart_id=f"cart-{i}", step_delays={"reminder": timedelta(0)}) for i in (2, 3)]
    async with engine.begin() as conn:
        await journey_rows.create(conn, later, NOW + timedelta(seconds=1))
    async with engine.begin() as conn:
        first = await step_rows.claim_due(
            conn, now=NOW + timedelta(seconds=6), worker="b", limit=2, lease=LEASE, dead_after=DEAD_AFTER
        )
    assert [step.step_id for step in first] == ["journey-1:reminder", "journey-2:reminder"]
    assert await claim(engine, "c", 6) == ["journey-3:reminder"]
    assert await claim(engine, "c", 6) == []
