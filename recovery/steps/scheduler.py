"""Durable timers: idle carts become ``cart.abandoned`` journeys, due steps are claimed and fired.

Every replica runs this loop; claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so no two replicas
fire the same step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.backoff import Backoff, is_outage
from recovery.clock import Clock
from recovery.desk.hours import CallingHours
from recovery.journeys.apply import Rules, start_journeys
from recovery.rules import Trigger
from recovery.settings import SchedulerSettings
from recovery.steps.dispatch import Dispatcher
from recovery.steps.failures import record_crash
from recovery.store import callback_rows, cart_rows, journey_rows, step_rows, worker_rows
from recovery.store.callback_rows import DEFAULT_CALLING_HOURS

log = logging.getLogger(__name__)


class Scheduler:
    """Polls the database for expired idle timers and due steps."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        rules: Rules,
        dispatcher: Dispatcher,
        clock: Clock,
        settings: SchedulerSettings,
        concurrency: int = 8,
        calling_hours: CallingHours = DEFAULT_CALLING_HOURS,
    ) -> None:
        self._engine = engine
        self._rules = rules
        self._dispatcher = dispatcher
        self._clock = clock
        self._settings = settings
        self._worker = f"worker-{uuid.uuid4().hex[:12]}"
        self._concurrency = concurrency
        self._calling_hours = calling_hours
        self._interrupted: list[step_rows.ClaimedStep] = []

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; a failing tick is retried with capped backoff, never fatal."""
        heart = asyncio.create_task(self._heartbeat(stop), name="scheduler-heartbeat")
        try:
            await self._loop(stop)
        finally:
            heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heart
            with contextlib.suppress(Exception):  # best effort: otherwise the heartbeat simply goes stale
                async with self._engine.begin() as conn:
                    await worker_rows.stopped(conn, self._worker)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Beat until ``stop``; during an outage the beat waits too (then claims are not renewed either)."""
        backoff = Backoff("scheduler heartbeat (database)")
        interval = self._settings.heartbeat_interval.total_seconds()
        while not stop.is_set():
            try:
                async with self._engine.begin() as conn:
                    await worker_rows.beat(conn, self._worker, self._clock.now())
            except Exception as exc:
                await backoff.wait(exc, stop)
                continue
            backoff.succeeded()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def _loop(self, stop: asyncio.Event) -> None:
        backoff = Backoff("scheduler (database)")
        while not stop.is_set():
            try:
                busy = await self.tick()
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("scheduler tick failed; retrying")
                await backoff.wait(exc, stop)
                continue
            backoff.succeeded()
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.poll_interval.total_seconds())

    async def tick(self) -> int:
        """One pass: start journeys for abandoned carts, fire due steps; return how much was done."""
        abandoned = await self.sweep_idle_carts()
        fired = await self.fire_due_steps()
        accepted = await self.accept_callback_requests()
        return abandoned + fired + accepted

    async def accept_callback_requests(self) -> int:
        """Shoppers who replied RAPPEL / CALL to a callback offer get a task for the agents."""
        async with self._engine.begin() as conn:
            return await callback_rows.tasks_from_requests(conn, self._clock.now(), hours=self._calling_hours)

    async def sweep_idle_carts(self) -> int:
        """Turn carts idle past ``abandonment.idle_after`` into ``cart.abandoned`` journeys."""
        now = self._clock.now()
        async with self._engine.begin() as conn:
            idle = await cart_rows.claim_idle_carts(conn, now, limit=500)
            if not idle:
                return 0
            last_entries = await journey_rows.load_last_entries(conn, {cart.customer_key for cart in idle})
            new = [
                journey
                for cart in idle
                for journey in start_journeys(
                    rules=self._rules,
                    trigger=Trigger.CART_ABANDONED,
                    cart=cart,
                    now=now,
                    trigger_event_at=cart.last_event_at,
                    last_entries=last_entries,
                )
            ]
            await journey_rows.create(conn, new, now)
        return len(idle)

    async def fire_due_steps(self) -> int:
        """Claim due steps and fire them concurrently (one slow provider does not hold the others)."""
        now = self._clock.now()
        async with self._engine.begin() as conn:
            claimed = await step_rows.claim_due(
                conn,
                now=now,
                worker=self._worker,
                # Claim no more than can be sent right away: a claim queued behind slow sends could
                # outlive its lease and be taken over by another replica.
                limit=min(self._settings.claim_batch, self._concurrency),
                lease=self._settings.lease,
                dead_after=self._settings.dead_after,
            )
        # Steps whose firing an outage interrupted are still ours: fire them again (a ``sending`` message is
        # reconciled first), rather than leaving them to the lease, since a worker never takes over itself.
        interrupted, self._interrupted = self._interrupted, []
        claimed = interrupted + claimed
        if claimed:
            await asyncio.gather(*(self._fire(step) for step in claimed))
        return len(claimed)

    async def _fire(self, step: step_rows.ClaimedStep) -> None:
        try:
            await self._dispatcher.fire(step)
        except Exception as exc:
            if is_outage(exc):
                # The claim stays; the loop's backoff reports the outage, the next good tick fires it again.
                self._interrupted.append(step)
                return
            # Anything else (bad shopper data in a channel, a bug) would fail again at every re-claim.
            log.exception("firing a step failed; recording it as failed", extra={"step": step.step_id})
            try:
                await record_crash(self._engine, self._clock, step, exc)
            except Exception:
                log.exception("could not record the failed step; its lease will hand it over")
