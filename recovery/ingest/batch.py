"""From Kafka records to durable cart state: one database transaction per batch, then the offsets.

Bad input goes to the dead-letter topic with its original bytes and a reason; the batch goes on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.adapters.base import Skipped
from recovery.attribution import conversion_rows
from recovery.attribution.credit import AttributionModel
from recovery.clock import Clock
from recovery.consent import ledger
from recovery.consent.authority import AddressKeys
from recovery.events import ConsentChanged, Event, OrderCompleted, OrderRefunded, PaymentFailed, Rejection
from recovery.ingest.platform_formats import PlatformSkips, decode_platform_record
from recovery.ingest.poison import apply_isolating, decode_record
from recovery.journeys import cart_rows, journey_rows
from recovery.journeys.apply import Rules, apply_batch, cart_id_of, customer_key_of
from recovery.journeys.records import guest_key
from recovery.settings import AttributionSettings

log = logging.getLogger(__name__)

DECODE_SLICE = 250  # records decoded between two turns of the event loop (~4 ms)


class Record(Protocol):
    """The parts of a Kafka consumer record ingest reads (aiokafka's ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class DeadLetters(Protocol):
    """Where rejected input goes."""

    async def send_many(self, topic: str, messages: Sequence[tuple[str | None, bytes]]) -> None: ...


@dataclass(frozen=True, kw_only=True)
class BatchReport:
    """What one batch did: counts for logs, metrics and the demo."""

    received: int
    rejected: int
    duplicates: int
    applied: int
    journeys_started: int
    journeys_ended: int
    skipped: int = 0


@dataclass(kw_only=True)
class DecodedBatch:
    """A batch after decoding: its events with their records, the rejected records with why, the skipped count."""

    records: Sequence[Record]
    decoded: list[tuple[Record, Event]] = field(default_factory=list)
    rejected: list[tuple[Record, str]] = field(default_factory=list)
    skipped: int = 0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while one batch is processed; the collector catches up after it.

    A batch makes tens of thousands of objects (events, rows, states) that all live until its write
    is done; the collector kept running in the middle of it, promoting and rescanning them: about a
    quarter of the CPU the batch cost. They hold no reference cycles, so nothing is lost by waiting.
    Other tasks on the loop run during the batch's awaits with the collector paused as well: for a
    batch's duration (well under a second; at most the 30 s statement timeout when the database hangs).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def dead_letter_document(record: Record, reason: str) -> dict[str, Any]:
    """The dead-letter payload: where the input came from, why it was refused, and its exact bytes."""
    raw = record.value or b""
    try:
        original: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        original = None
    return {
        "reason": reason,
        "source": "input",
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode("utf-8", "replace") if record.key else None,
        "original": original,
        "original_base64": base64.b64encode(raw).decode("ascii"),
    }


class BatchProcessor:
    """Applies a batch of records: dead-letters the bad ones, writes the rest in one transaction."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        rules: Rules,
        clock: Clock,
        dead_letters: DeadLetters,
        dead_letter_topic: str,
        addresses: AddressKeys,
        attribution: AttributionSettings | None = None,
        max_event_bytes: int = 1_000_000,
        formats: Mapping[str, str] | None = None,
        skips: PlatformSkips | None = None,
    ) -> None:
        self._addresses = addresses
        self._max_event_bytes = max_event_bytes
        self._formats = dict(formats or {})  # topic name -> platform format; absent = native
        self._skips = skips or PlatformSkips()
        # (topic, partition, offset) already dead-lettered: a retried batch does not publish them again.
        self._dead_lettered: set[tuple[str, int, int]] = set()
        self._attribution = attribution or AttributionSettings()
        self._engine = engine
        self._rules = rules
        self._clock = clock
        self._dead_letters = dead_letters
        self._dead_letter_topic = dead_letter_topic

    async def process(self, records: Sequence[Record]) -> BatchReport:
        """Process the batch; when this returns, its effects are committed and its offsets may be."""
        return await self.write(await self.decode(records))

    async def decode(self, records: Sequence[Record]) -> DecodedBatch:
        """Decode every record alone (no I/O). It gives the event loop a turn every ``DECODE_SLICE`` records, so
        that the previous batch's write goes on between them while the database works."""
        batch = DecodedBatch(records=records)
        for start in range(0, len(records), DECODE_SLICE):
            if start:
                await asyncio.sleep(0)
            with gc_paused():
                for record in records[start : start + DECODE_SLICE]:
                    self._decode_into(batch, record)
        return batch

    def _decode_into(self, batch: DecodedBatch, record: Record) -> None:
        format_ = self._formats.get(record.topic)
        if format_ is None:
            parsed = decode_record(record.value, max_bytes=self._max_event_bytes)
            if isinstance(parsed, Rejection):
                batch.rejected.append((record, parsed.reason))
            else:
                batch.decoded.append((record, parsed))
            return
        headers = getattr(record, "headers", None)  # aiokafka's records carry them (CloudEvents binary mode)
        translated = decode_platform_record(record.value, headers, format_, max_bytes=self._max_event_bytes)
        if isinstance(translated, Rejection):
            batch.rejected.append((record, translated.reason))
        elif isinstance(translated, Skipped):
            self._skips.count(translated)
            batch.skipped += 1
        else:
            batch.decoded.extend((record, event) for event in translated)

    async def write(self, batch: DecodedBatch) -> BatchReport:
        """Dead-letter the rejected records and write the rest in one transaction (retried whole on an outage)."""
        with gc_paused():
            await self._dead_letter(batch.rejected)
            isolated = await apply_isolating(batch.decoded, self._apply_pairs, engine=self._engine)
            await self._dead_letter([(record, reason) for (record, _), reason in isolated.refused])
        totals = {"duplicates": 0, "applied": 0, "journeys_started": 0, "journeys_ended": 0}
        for result in isolated.results:
            for name, count in result.items():
                totals[name] += count
        self._dead_lettered.clear()  # the batch is done: its offsets are about to be committed
        rejected = len(batch.rejected) + len(isolated.refused)
        return BatchReport(received=len(batch.records), rejected=rejected, skipped=batch.skipped, **totals)

    async def _dead_letter(self, rejected: Sequence[tuple[Record, str]]) -> None:
        """Publish each rejected record once, with its reason; log it without its content."""
        fresh = [(r, reason) for r, reason in rejected if (r.topic, r.partition, r.offset) not in self._dead_lettered]
        for record, reason in fresh:
            log.warning(
                "event rejected to dead letter: %s (topic %s partition %s offset %s)",
                reason,
                record.topic,
                record.partition,
                record.offset,
                extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "reason": reason},
            )
        if not fresh:
            return
        await self._dead_letters.send_many(
            self._dead_letter_topic,
            [(_key(record), _json(dead_letter_document(record, why))) for record, why in fresh],
        )
        self._dead_lettered.update((r.topic, r.partition, r.offset) for r, _ in fresh)

    async def _apply_pairs(self, pairs: Sequence[tuple[Record, Event]]) -> dict[str, int]:
        return await self._apply([event for _, event in pairs])

    async def _attribute(self, conn: AsyncConnection, events: list[Event]) -> None:
        """Credit orders to the message that recovered them; deduct refunds."""
        # One lookup for the batch instead of three per order: an order on a cart that never had a journey
        # has no message to credit and no holdout journey, so ``record_order`` would write nothing.
        order_carts = {event.order.cart_id or event.cart_id for event in events if isinstance(event, OrderCompleted)}
        journeyed = await journey_rows.carts_with_journeys(conn, order_carts)
        for event in events:
            if isinstance(event, OrderCompleted):
                if (event.order.cart_id or event.cart_id) not in journeyed:
                    continue
                await conversion_rows.record_order(
                    conn,
                    order_id=event.order.id,
                    cart_id=event.order.cart_id or event.cart_id,
                    value=event.order.value,
                    currency=event.order.currency,
                    occurred_at=event.occurred_at,
                    model=AttributionModel(self._attribution.model),
                    click_window=self._attribution.click_window,
                    send_window=self._attribution.send_window,
                )
            elif isinstance(event, OrderRefunded):
                await conversion_rows.record_refund(
                    conn, order_id=event.order.id, value=event.order.value, now=event.occurred_at
                )

    async def _apply(self, events: list[Event]) -> dict[str, int]:
        if not events:
            return {"duplicates": 0, "applied": 0, "journeys_started": 0, "journeys_ended": 0}
        now = self._clock.now()
        async with self._engine.begin() as conn:
            first = await cart_rows.first_deliveries(conn, [event.id for event in events])
            # An id repeated inside one batch is also a duplicate: keep its first occurrence.
            fresh: list[Event] = []
            for event in events:
                if event.id in first:
                    first.discard(event.id)
                    fresh.append(event)
            cart_ids = {cart_id_of(event) for event in fresh if not isinstance(event, ConsentChanged)}
            customer_keys = {event.customer.id for event in fresh if event.customer and event.customer.id}
            carts = await cart_rows.load_carts(conn, cart_ids, documents=False)
            customer_keys |= {cart.customer_key for cart in carts.values()}
            customers = await cart_rows.load_customers(conn, customer_keys)
            active = await journey_rows.load_active(conn, carts)
            last_entries = (
                await journey_rows.load_last_entries(conn, customer_keys | {guest_key(c) for c in cart_ids})
                if any(isinstance(event, PaymentFailed) for event in fresh)
                else {}
            )
            outcome = apply_batch(
                fresh,
                rules=self._rules,
                carts=carts,
                customers=customers,
                active=active,
                last_entries=last_entries,
                now=now,
            )
            await cart_rows.save_customers(conn, outcome.customers.values())
            await _record_consent_events(conn, fresh, now, self._addresses)
            await cart_rows.save_carts(conn, outcome.carts.values())
            await journey_rows.create(conn, outcome.new_journeys, now)
            await journey_rows.identify(conn, outcome.identified)
            await journey_rows.end(conn, outcome.ended, now)
            await self._attribute(conn, fresh)
        return {
            "duplicates": len(events) - len(fresh),
            "applied": len(fresh),
            "journeys_started": len(outcome.new_journeys),
            "journeys_ended": len(outcome.ended),
        }


async def _record_consent_events(
    conn: AsyncConnection, events: list[Event], now: datetime, addresses: AddressKeys
) -> None:
    """``consent.changed`` is an explicit statement: into the ledger, at its time (never later than now)."""
    for event in events:
        if not isinstance(event, ConsentChanged):
            continue
        customer = event.customer
        if customer.consent is None:
            continue
        await ledger.record_event_consent(
            conn,
            customer_key=customer_key_of(event.cart_id, customer),
            email=customer.email,
            phone=customer.phone,
            consents=customer.consent.model_dump(),
            at=min(event.occurred_at, now),
            addresses=addresses,
        )


def _key(record: Record) -> str | None:
    return record.key.decode("utf-8", "replace") if record.key else None


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")
