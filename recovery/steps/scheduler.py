"""Durable timers: idle carts become ``cart.abandoned`` journeys, due steps are claimed and fired.

Every replica runs this loop; claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so no two replicas
fire the same step.

Firing is a pipeline: one claimer keeps a bounded backlog of claimed steps filled (claims sized to what the
senders can start within half the lease), ``concurrency`` senders drain it, each taking the steps queued at
that moment together (up to ``fire_batch``: ``dispatch_batch.fire_batch`` shares their statements);
rate-limited channels get their steps handed out at their pace (token buckets). How many fires run at once
adapts (up to ``concurrency``) so a fire stays short against the lease: a send still in flight when its claim
expires could be repeated by the replica taking it over. A step created due now wakes the claimer (in this
process, and through ``LISTEN``/``NOTIFY`` on PostgreSQL) instead of waiting for the next poll.
``run_until_idle`` runs this same loop by hand (tests, tools) until nothing is due (arq's ``burst``): there is
no second firing path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.backoff import Backoff, is_outage, wait_first
from recovery.channels.rate import ChannelRates
from recovery.clock import Clock
from recovery.desk import claim_rows, task_rows
from recovery.desk.policy import DEFAULT_POLICY, DeskPolicy
from recovery.journeys import cart_rows, journey_rows
from recovery.journeys.apply import Rules, start_journeys
from recovery.rules import Trigger
from recovery.settings import SchedulerSettings
from recovery.steps import step_rows, worker_rows
from recovery.steps.dispatch import Dispatcher
from recovery.steps.dispatch_batch import fire_batch
from recovery.steps.failures import record_crash
from recovery.steps.pacing import claim_limit, next_allowed, pacing_full, room_for_a_claim
from recovery.store.database import listen_due, on_due

__all__ = ["DEFAULT_CONCURRENCY", "STOP_GRACE_S", "Scheduler"]

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 64
# In-flight sends get this long to finish on stop; the rest keep their claims (taken over at once, since a
# stopped worker reads as dead, and a ``sending`` message is reconciled with the provider first).
STOP_GRACE_S = 10.0
# Seconds a fire is assumed to take before any has been measured (a provider round trip and two writes).
_FIRST_FIRE_S = 0.2
_FIRST_ALLOWED = 8
# Steps one sender fires together at most (those queued when it takes one): their load, ``sending`` writes
# and ``sent`` outcomes are one statement each (issue 25: CPU per SMS).
FIRE_BATCH = 16


class Scheduler:
    """Polls the database for expired idle timers and due steps, and fires them through a sender pool."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        rules: Rules,
        dispatcher: Dispatcher,
        clock: Clock,
        settings: SchedulerSettings,
        concurrency: int = DEFAULT_CONCURRENCY,
        rates: Mapping[str, float] | None = None,
        channel_concurrency: Mapping[str, int] | None = None,
        desk_policy: DeskPolicy = DEFAULT_POLICY,
        stop_grace_s: float = STOP_GRACE_S,
        monotonic: Callable[[], float] = time.monotonic,
        fire_batch: int = FIRE_BATCH,
    ) -> None:
        self._engine = engine
        self._rules = rules
        self._dispatcher = dispatcher
        self._clock = clock
        self._settings = settings
        self._worker = f"worker-{uuid.uuid4().hex[:12]}"
        self._concurrency = max(1, concurrency)
        self._fire_batch = max(1, fire_batch)
        self._desk_policy = desk_policy
        self._interrupted: list[step_rows.ClaimedStep] = []
        self._monotonic = monotonic
        self._rates = ChannelRates(dict(rates or {}), monotonic(), engine=engine, clock=monotonic)
        # Per channel: the most steps queued or in flight at once (email: the most a kill leaves unknown).
        self._channel_limits = dict(channel_concurrency or {})
        self._active: dict[str, int] = {}  # per channel: steps queued or being fired
        self._stop_grace_s = stop_grace_s
        # The pipeline's state (``run``; ``run_until_idle`` is the same loop, ending once nothing is due).
        self._capacity = 2 * self._concurrency
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._queue: asyncio.Queue[step_rows.ClaimedStep | None] = asyncio.Queue()
        self._held: dict[str, deque[step_rows.ClaimedStep]] = {}
        self._busy = 0  # steps being fired right now
        self._fire_s = _FIRST_FIRE_S
        # Fires allowed at once: starts low and grows while fires stay short against the lease.
        self._allowed = min(self._concurrency, _FIRST_ALLOWED)
        self._slowed_at = 0.0
        self._drained = False
        self._claimed_at: dict[str, float] = {}  # monotonic claim time of held steps (interrupted ones: none)
        self._burst = False  # run until idle: sweep at every turn, stop when nothing is due or in flight
        self._done = 0  # carts swept, callback requests accepted and steps fired, for ``run_until_idle``

    def wake(self) -> None:
        """A step is due now: claim at once instead of at the next poll."""
        self._wake.set()

    async def run_until_idle(self) -> int:
        """Run the real claimer and senders until nothing is due or in flight (arq's ``burst``); the work done.

        For tests and tools driving time by hand: every turn sweeps (as a poll would), and an error that
        ``run`` would retry with backoff is raised instead.
        """
        before = self._done
        self._burst = True
        try:
            await self.run(asyncio.Event())
        finally:
            self._burst = False
        return self._done - before

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and fire until ``stop`` is set; a failing claim is retried with capped backoff, never fatal."""
        heart = asyncio.create_task(self._heartbeat(stop), name="scheduler-heartbeat")
        listener = asyncio.create_task(listen_due(self._engine, self.wake, stop), name="scheduler-listen")
        stop_waking = on_due(self._engine, self.wake)
        senders = [asyncio.create_task(self._sender(), name=f"scheduler-sender-{i}") for i in range(self._concurrency)]
        try:
            await self._loop(stop)
        finally:
            stop_waking()
            await self._drain(senders)
            for task in (heart, listener):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(Exception):  # best effort: otherwise the heartbeat simply goes stale
                async with self._engine.begin() as conn:
                    await worker_rows.stopped(conn, self._worker)

    async def _drain(self, senders: list[asyncio.Task[None]]) -> None:
        """Stop: steps not started keep their claims; in-flight fires get ``stop_grace_s`` to finish."""
        self._held.clear()
        self._claimed_at.clear()
        while not self._queue.empty():
            step = self._queue.get_nowait()
            if step is not None:
                self._active[step.channel] -= 1
        for _ in senders:
            self._queue.put_nowait(None)
        _done, late = await asyncio.wait(senders, timeout=self._stop_grace_s)
        for task in late:
            task.cancel()
        if late:
            log.warning("%d sends still in flight at stop; their steps will be reconciled", len(late))
            await asyncio.gather(*late, return_exceptions=True)

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
        """The claimer: sweep and accept every poll, claim whenever there is room, hand steps to the senders."""
        backoff = Backoff("scheduler (database)")
        poll = self._settings.poll_interval.total_seconds()
        next_sweep = 0.0
        claim = True
        while not stop.is_set():
            self._wake.clear()
            self._room.clear()
            try:
                swept = 0
                if self._burst or self._monotonic() >= next_sweep:  # the poll: sweep, accept, claim what is due
                    swept = await self.sweep_idle_carts() + await self.accept_callback_requests()
                    self._done += swept
                    next_sweep = self._monotonic() + poll
                    claim = True
                more = await self._claim() if claim or self._interrupted else False
            except Exception as exc:
                if self._burst:
                    raise
                if not is_outage(exc):
                    log.exception("scheduler tick failed; retrying")
                await backoff.wait(exc, stop)
                continue
            backoff.succeeded()
            self._hand_out()
            claim = True
            if swept or more:
                continue  # more may be due: claim again at once (or as soon as there is room)
            if self._burst and not self._backlog() and not self._interrupted:
                return  # idle: nothing was due, nothing is in flight
            within = min(poll, max(next_sweep - self._monotonic(), 0.0), self._pace_wait())
            # Room alone (a send finished) is worth a claim only while the last claim left steps behind.
            claim = not await self._until_woken(stop, within=within) or not self._drained

    async def _until_woken(self, stop: asyncio.Event, *, within: float) -> bool:
        """Wait for a due-now step, room in the backlog, a rate-limited channel's next token, or ``within`` s;
        True when only room woke it."""
        await wait_first(stop, self._wake, self._room, within=within)
        return self._room.is_set() and not (stop.is_set() or self._wake.is_set())

    def _backlog(self) -> int:
        """Claimed steps not yet finished: queued, held back by a rate, or being fired."""
        return self._queue.qsize() + sum(len(held) for held in self._held.values()) + self._busy

    def _room_left(self) -> int:
        return self._capacity - self._backlog()

    async def _claim(self) -> bool:
        """Claim what fits and hold it for hand-out; True when the claim was full (more may be due)."""
        lease_s = self._settings.lease.total_seconds()
        limit = claim_limit(
            room=self._room_left(),
            claim_batch=self._settings.claim_batch,
            backlog=self._backlog(),
            concurrency=self._allowed,
            fire_s=self._fire_s,
            lease_s=lease_s,
            paced_full=any(
                pacing_full(len(held), self._rates.rate(channel), lease_s) for channel, held in self._held.items()
            ),
        )
        if limit <= 0 and not self._interrupted:
            return False
        # Steps whose firing an outage interrupted are still ours: fire them again (a ``sending`` message is
        # reconciled first) once the database answers again (this claim), and before anything new.
        async with self._engine.begin() as conn:
            claimed = await step_rows.claim_due(
                conn,
                now=self._clock.now(),
                worker=self._worker,
                limit=max(limit, 0),
                lease=self._settings.lease,
                dead_after=self._settings.dead_after,
            )
        interrupted, self._interrupted = self._interrupted, []
        for step in reversed(interrupted):
            self._held.setdefault(step.channel, deque()).appendleft(step)
        claimed_now = self._monotonic()
        for step in claimed:
            self._held.setdefault(step.channel, deque()).append(step)
            self._claimed_at[step.step_id] = claimed_now
        # Fewer than asked: nothing more is due now (until a wake-up or the next poll says otherwise).
        self._drained = limit > 0 and len(claimed) < limit
        return limit > 0 and len(claimed) == limit

    def _hand_out(self) -> None:
        """Queue held steps while fewer than ``allowed`` are queued or in flight and their channel has a token
        (unlimited channels always have one).

        A step claimed more than half a lease ago is not started: it is left to the lease (re-claimed by
        whichever replica comes first), since its send could outlive the claim. Claims are sized so this is rare.
        """
        now = self._monotonic()
        half_lease = self._settings.lease.total_seconds() / 2
        for channel, held in self._held.items():
            cap = self._channel_limits.get(channel, self._concurrency)
            while held and self._queue.qsize() + self._busy < self._allowed and self._active.get(channel, 0) < cap:
                claimed_at = self._claimed_at.pop(held[0].step_id, now)
                if now - claimed_at > half_lease:
                    log.warning("claim too old to send; left to its lease", extra={"step": held.popleft().step_id})
                    continue
                if not self._rates.take(channel, now):
                    self._claimed_at[held[0].step_id] = claimed_at
                    break
                self._active[channel] = self._active.get(channel, 0) + 1
                self._queue.put_nowait(held.popleft())

    def _pace_wait(self) -> float:
        """Seconds until a channel holding steps back for its rate may send again (infinite when none does).

        A step held while its channel may send now waits for a free sender, and the send that finishes hands
        it out (``_finished``): counting it here as a wait of 0 made the claimer turn without sleeping for as
        long as every sender was busy (15 000 idle turns in a burst of 1 000 SMS).
        """
        now = self._monotonic()
        waits = [wait for channel, held in self._held.items() if held and (wait := self._rates.wait(channel, now)) > 0]
        return min(waits, default=float("inf"))

    async def _sender(self) -> None:
        """Fire queued steps until the ``None`` that says stop: the first waited for, with it those queued at
        that moment, up to ``fire_batch`` (one batch shares its statements: ``steps.dispatch_batch``)."""
        stopping = False
        while not stopping and (step := await self._queue.get()) is not None:
            batch = [step]
            while len(batch) < self._fire_batch and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:  # this sender's stop: the batch in hand is fired first
                    stopping = True
                    break
                batch.append(more)
            await self._fire(batch)

    async def _fire(self, batch: list[step_rows.ClaimedStep]) -> None:
        """Fire ``batch``; each step counts as finished as soon as its own firing has (or at the end)."""
        self._busy += len(batch)
        started = self._monotonic()
        left = {step.step_id: step for step in batch}

        def finished(step: step_rows.ClaimedStep) -> None:
            if left.pop(step.step_id, None) is not None:
                self._busy -= 1
                self._active[step.channel] -= 1
                self._done += 1
                self._finished(self._monotonic() - started)

        try:
            try:
                failed = await fire_batch(self._dispatcher, batch, finished)
            except Exception as exc:  # fire_batch says which step failed; an error of its own is every step's
                failed = [(step, exc) for step in batch]
            for step, error in failed:
                await self._fire_failed(step, error)
                finished(step)
        finally:
            for step in list(left.values()):
                finished(step)

    def _finished(self, fire_s: float) -> None:
        """One fire done: update the average fire time and the fires allowed at once; wake the claimer."""
        self._fire_s += (fire_s - self._fire_s) / 8
        now = self._monotonic()
        allowed = next_allowed(
            self._allowed,
            concurrency=self._concurrency,
            fire_s=self._fire_s,
            lease_s=self._settings.lease.total_seconds(),
        )
        # Halve at most once per fire time: the fires that were already slow are no news.
        if allowed >= self._allowed or now - self._slowed_at > self._fire_s:
            if allowed < self._allowed:
                self._slowed_at = now
                log.info("fires slow against the lease: %d at once now", allowed)
            self._allowed = allowed
        # The freed sender takes a held step now, without a turn of the claimer; the claimer itself is woken
        # only when a claim would be made (or nothing is left, which ends a burst): waking it for every
        # finished send cost a loop turn per SMS, its waits and cancellations included.
        self._hand_out()
        if (
            (not self._drained and room_for_a_claim(self._room_left(), self._allowed))
            or not self._backlog()
            or self._pace_wait() < float("inf")  # a step now held back by its channel's rate: time its release
        ):
            self._room.set()

    async def accept_callback_requests(self) -> int:
        """Shoppers who replied RAPPEL / CALL to a callback offer get a task; lapsed agents' claims return."""
        now = self._clock.now()
        async with self._engine.begin() as conn:
            accepted = await task_rows.tasks_from_requests(conn, now, policy=self._desk_policy)
            return accepted + await claim_rows.expire_claims(conn, now, self._desk_policy.view)

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

    async def _fire_failed(self, step: step_rows.ClaimedStep, exc: Exception) -> None:
        """What follows a step whose firing raised: fired again after an outage, else recorded as failed."""
        if is_outage(exc):
            # The claim stays; the loop's backoff reports the outage, the next claim fires it again.
            self._interrupted.append(step)
            return
        # Anything else (bad shopper data in a channel, a bug) would fail again at every re-claim.
        log.error("firing a step failed; recording it as failed", extra={"step": step.step_id}, exc_info=exc)
        try:
            await record_crash(self._engine, self._clock, step, exc)
        except Exception:
            log.exception("could not record the failed step; its lease will hand it over")
