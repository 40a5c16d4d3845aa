"""Firing claimed steps in batches: what ``Dispatcher.fire`` does for one step, its statements shared by N.

Per batch instead of per message: one transaction loads every step's rows (one joined query, one message read,
one consent-ledger read), decides each (pure), renders the plain sends in one render-thread hop and writes them
``sending`` (one short-link insert, one upsert for all) before any provider call; then the sends run at once,
and the ``sent`` outcomes of the sends that finished together are recorded in one transaction (three
executemany statements and one outbox insert). Everything else (cancel, skip, defer, reconcile, a discount
offer, a render failure, a refusal, a postponement, an unknown outcome) goes through the single-step code,
in the same transactions.

The guarantees stay ``fire``'s: a message is committed ``sending`` before it is handed to the provider and
its outcome is recorded after; an outage leaves the claims to be fired again (``sending`` rows reconciled).
An error the batch cannot pin on one step (a bug while preparing or recording) makes each of its steps go
through ``fire`` or ``record`` alone, so an unexpected error still ends only its own step failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from recovery.backoff import is_outage
from recovery.consent import ledger
from recovery.errors import ConfigError
from recovery.messages import message_id_for
from recovery.render import short_link_rows
from recovery.render.short_links import ShortLink
from recovery.states import PublishedType
from recovery.steps import fire_rows, step_rows
from recovery.steps.decide import Rendered, SendMessage, StepFacts, decide, outgoing_for, render_failed
from recovery.steps.dispatch import Dispatcher, InFlight, message_row, sending_row
from recovery.steps.failures import fail_step, identity_event
from recovery.steps.rendering import render_many
from recovery.steps.settle import AfterSend, RecordSent
from recovery.steps.step_rows import ClaimedStep
from recovery.store.outbox import enqueue

__all__ = ["fire_batch"]

log = logging.getLogger(__name__)

# After a send of the batch ends, how long the others get to end too and share its record (the shopper's SMS
# is already with the provider: only the step's bookkeeping waits).
GATHER_S = 0.02

Failed = list[tuple[ClaimedStep, Exception]]
Done = Callable[[ClaimedStep], None]


def _ignore(step: ClaimedStep) -> None:
    """The default ``done``: nobody is waiting for single steps."""


async def fire_batch(dispatcher: Dispatcher, steps: Sequence[ClaimedStep], done: Done = _ignore) -> Failed:
    """Fire ``steps`` (decide, mark ``sending``, send, record); the steps whose firing raised, with the error.

    ``done`` is called with each step whose firing ended without an error, as soon as it has (the others are
    returned): a slow send does not hold the rest of its batch.
    """
    try:
        flights = await _prepare(dispatcher, steps)
    except Exception as exc:
        if is_outage(exc):
            return [(step, exc) for step in steps]  # nothing was written: each claim is fired again
        log.warning("preparing a batch failed; firing its steps one at a time", extra={"error": type(exc).__name__})
        return await _one_by_one(dispatcher, steps)
    sending = {step.step_id for step, _ in flights}
    for step in steps:
        if step.step_id not in sending:
            done(step)  # decided without a send (cancelled, skipped, deferred, claim lost)
    return await _send_all(dispatcher, flights, done)


async def _one_by_one(dispatcher: Dispatcher, steps: Sequence[ClaimedStep]) -> Failed:
    """Each step through ``fire`` on its own, so an error is its step's alone."""
    errors = await asyncio.gather(*(dispatcher.fire(step) for step in steps), return_exceptions=True)
    failed: Failed = []
    for step, error in zip(steps, errors, strict=True):
        if isinstance(error, Exception):
            failed.append((step, error))
        elif isinstance(error, BaseException):
            raise error  # cancelled: stop as ``fire`` would
    return failed


async def _prepare(dispatcher: Dispatcher, steps: Sequence[ClaimedStep]) -> list[tuple[ClaimedStep, InFlight]]:
    """One transaction: load, decide and write every step's plan; the messages marked ``sending``, to send."""
    now = dispatcher.clock.now()
    since = now - dispatcher.guards.frequency_window
    flights: list[tuple[ClaimedStep, InFlight]] = []
    async with dispatcher.engine.begin() as conn:
        claimed = [(step, message_id_for(step.journey_id, step.name)) for step in steps]
        loaded = await fire_rows.load_many_for_fire(conn, claimed, since=since)
        people = {rows.customer.customer_key: rows.customer for rows in loaded.values() if rows and rows.customer}
        entries = await ledger.ledger_entries_many(
            conn, [(c.customer_key, c.email, c.phone) for c in people.values()], dispatcher.addresses
        )
        sends: list[tuple[ClaimedStep, StepFacts, SendMessage]] = []
        for step in steps:
            rows = loaded[step.step_id]
            if rows is None:
                log.warning("claim lost to another worker; not sending", extra={"step": step.step_id})
                continue
            customer_key = rows.customer.customer_key if rows.customer else ""
            facts = await dispatcher.facts(conn, step, rows, entries.get(customer_key, []))
            plan = decide(facts, dispatcher.guards, now)
            if isinstance(plan, SendMessage) and plan.flow_step.offer is None:
                sends.append((step, facts, plan))
                continue
            flight = await dispatcher.write_plan(conn, step, facts, plan, now)
            if flight is not None:
                flights.append((step, flight))
        flights += await _open_all(dispatcher, conn, sends, now)
    return flights


async def _open_all(
    dispatcher: Dispatcher,
    conn: AsyncConnection,
    sends: list[tuple[ClaimedStep, StepFacts, SendMessage]],
    now: datetime,
) -> list[tuple[ClaimedStep, InFlight]]:
    """Render the plain sends in one hop and write them ``sending`` in one upsert (their short links first)."""
    if not sends:
        return []
    rendered = await render_many(dispatcher.composer, [(plan, plan.context) for _, _, plan in sends])
    rows: list[dict[str, Any]] = []
    links: list[ShortLink] = []
    flights: list[tuple[ClaimedStep, InFlight]] = []
    for (step, facts, plan), found in zip(sends, rendered, strict=True):
        row = message_row(step, plan, now)
        if isinstance(found, ConfigError):
            if facts.message is None:
                await step_rows.open_message(conn, row)  # the row the failure is recorded on
            failed = render_failed(plan, str(found))
            await fail_step(conn, step.step_id, failed, now, journey_id=plan.identity.journey_id)
            continue
        if not isinstance(found, Rendered):
            raise found  # not the template's fault: the batch goes one step at a time
        outgoing = outgoing_for(plan, found)
        links += found.short_links
        rows.append(sending_row(row, plan, found, outgoing))
        first = plan.first_tried_at
        flights.append((step, InFlight(outgoing=outgoing, reconcile=plan.reconcile, first_tried_at=first)))
    # The SMS's short links exist before it can be read: stored in the transaction that marks it sending.
    await short_link_rows.store_links(conn, links, now)
    # Committed before the provider call: a crash from here on leaves ``sending``, reconciled, never resent.
    await fire_rows.open_sending_many(conn, rows)
    return flights


async def _send_all(dispatcher: Dispatcher, flights: list[tuple[ClaimedStep, InFlight]], done: Done) -> Failed:
    """Send every message at once; record the outcomes of the sends that finished together in one go."""
    pending = {asyncio.create_task(dispatcher.send(step, flight)): (step, flight) for step, flight in flights}
    failed: Failed = []
    try:
        while pending:
            ended, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if len(ended) < len(pending):
                # Sends started together end within a few ms of each other: one record for those that do.
                ended, _ = await asyncio.wait(pending, timeout=GATHER_S)
            outcomes = []
            for task in ended:
                step, flight = pending.pop(task)
                error = task.exception()
                if isinstance(error, Exception):
                    failed.append((step, error))
                elif error is not None:
                    raise error
                else:
                    outcomes.append((step, flight, task.result()))
            errors = await _record_all(dispatcher, outcomes)
            failed += errors
            unrecorded = {step.step_id for step, _ in errors}
            for step, _, _ in outcomes:
                if step.step_id not in unrecorded:
                    done(step)
    finally:
        # Cancelled (a stop past its grace): the sends still in flight stop with it, their rows stay ``sending``.
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return failed


async def _record_all(dispatcher: Dispatcher, outcomes: list[tuple[ClaimedStep, InFlight, AfterSend]]) -> Failed:
    """The ``sent`` outcomes in one transaction, the others one by one; the steps whose recording raised."""
    sent = [(step, flight, plan) for step, flight, plan in outcomes if isinstance(plan, RecordSent)]
    rest: Sequence[tuple[ClaimedStep, InFlight, AfterSend]] = [o for o in outcomes if not isinstance(o[2], RecordSent)]
    if len(sent) > 1:
        try:
            await _record_sent(dispatcher, sent)
        except Exception as exc:
            if is_outage(exc):
                return [(step, exc) for step, _, _ in sent] + await _record_each(dispatcher, rest)
            log.warning("recording a batch failed; recording one at a time", extra={"error": type(exc).__name__})
            rest = outcomes
    else:
        rest = outcomes
    return await _record_each(dispatcher, rest)


async def _record_each(dispatcher: Dispatcher, outcomes: Sequence[tuple[ClaimedStep, InFlight, AfterSend]]) -> Failed:
    failed: Failed = []
    for step, flight, plan in outcomes:
        try:
            await dispatcher.record(step, flight, plan)
        except Exception as exc:
            failed.append((step, exc))
    return failed


async def _record_sent(dispatcher: Dispatcher, sent: list[tuple[ClaimedStep, InFlight, RecordSent]]) -> None:
    """What ``Dispatcher.record`` writes for each ``sent`` outcome, in one transaction for all of them."""
    now = dispatcher.clock.now()
    rows = [
        fire_rows.SentRow(
            step_id=step.step_id,
            message_id=flight.outgoing.message_id,
            journey_id=flight.outgoing.journey_id,
            provider_id=plan.delivery.provider_id,
            detail=dict(plan.delivery.detail) or None,
        )
        for step, flight, plan in sent
    ]
    events = [
        identity_event(PublishedType.MESSAGE_SENT, flight.outgoing, now, variant=flight.outgoing.variant)
        for _, flight, _ in sent
    ]
    async with dispatcher.engine.begin() as conn:
        await fire_rows.record_sent_many(conn, rows, now)
        await enqueue(conn, events)
    for _, flight, _ in sent:
        message = flight.outgoing
        log.info(
            "message sent",
            extra={"journey_id": message.journey_id, "step": message.step, "channel": message.channel.value},
        )
