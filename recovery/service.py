"""The service: consumer, scheduler, outbox relay (and later HTTP) with one owned lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from faststream.types import DecodedMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api.app import create_app
from recovery.api.server import serve_http
from recovery.backoff import Backoff, is_outage
from recovery.channels.base import Channel, ChannelName
from recovery.channels.callback import CallbackChannel
from recovery.clock import Clock, SystemClock
from recovery.discount_hook import DiscountRegistrar
from recovery.dispatch import Composer, Dispatcher, RetryPolicy
from recovery.embedded_broker import EmbeddedBroker
from recovery.guards import GuardPolicy
from recovery.holdout import in_holdout
from recovery.ingest import BatchProcessor, BatchReport
from recovery.journeys import Rules
from recovery.kafka_io import Producer, ensure_topics
from recovery.relay import OutboxRelay
from recovery.rules import Flows, load_flows
from recovery.scheduler import Scheduler
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    """Running totals, for the demo's progress and the logs."""

    received: int = 0
    rejected: int = 0
    duplicates: int = 0
    applied: int = 0
    batches: int = 0
    last: BatchReport | None = field(default=None, repr=False)

    def add(self, report: BatchReport) -> None:
        self.received += report.received
        self.rejected += report.rejected
        self.duplicates += report.duplicates
        self.applied += report.applied
        self.batches += 1
        self.last = report


def build_rules(settings: Settings, flows: Flows) -> Rules:
    """The pure decisions' configuration from settings."""
    percent = settings.guards.holdout_percent
    salt = settings.guards.holdout_salt
    return Rules(
        flows=flows,
        idle_after=settings.abandonment.idle_after,
        in_holdout=lambda key: in_holdout(key, salt=salt, percent=percent),
    )


def guard_policy(settings: Settings) -> GuardPolicy:
    """Guards' configuration from settings."""
    return GuardPolicy(
        quiet_hours=settings.guards.quiet_hours,
        stores=settings.guards.stores,
        frequency_cap=settings.guards.frequency_cap,
        frequency_window=settings.guards.frequency_window,
    )


class Service:
    """Everything ``recovery run`` runs, started and stopped as one unit."""

    def __init__(
        self,
        settings: Settings,
        *,
        channels: Mapping[ChannelName, Channel],
        composer: Composer,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.stats = IngestStats()
        self._channels = channels
        self._composer = composer
        self.bootstrap_servers: str | None = None
        self.engine: AsyncEngine | None = None
        self.http_port: int | None = None

    async def run(self, stop: asyncio.Event, *, started: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set; every resource is released on the way out."""
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            flows = load_flows(settings.flows_file)
            self.engine = engine = create_engine(settings.database.url)
            stack.push_async_callback(engine.dispose)
            # Started during an outage (a restart, say): wait for the database instead of exiting.
            await _until_reachable("database at start-up", lambda: upgrade_to_head(engine), stop)

            if settings.kafka.embedded:
                embedded = EmbeddedBroker()
                await asyncio.to_thread(embedded.start)
                stack.callback(embedded.stop)
                self.bootstrap_servers = embedded.bootstrap_servers
            else:
                self.bootstrap_servers = settings.kafka.bootstrap_servers
            bootstrap = self.bootstrap_servers
            await _until_reachable("broker at start-up", lambda: ensure_topics(bootstrap, settings.kafka), stop)

            producer = Producer(self.bootstrap_servers)
            await producer.start()
            stack.push_async_callback(producer.stop)

            rules = build_rules(settings, flows)
            processor = BatchProcessor(
                engine=engine,
                rules=rules,
                clock=self.clock,
                dead_letters=producer,
                dead_letter_topic=settings.kafka.topics.dead_letter.name,
                attribution=settings.attribution,
                max_event_bytes=settings.ingest.max_event_bytes,
            )
            channels = dict(self._channels)
            # Callbacks need the database (tasks); offers go out through the SMS channel.
            channels[ChannelName.CALLBACK] = CallbackChannel(
                engine=engine, clock=self.clock, offer_channel=self._channels[ChannelName.SMS]
            )
            registrar = None
            if settings.offers.register_url:
                registrar = DiscountRegistrar(
                    url=settings.offers.register_url,
                    secret=settings.security.link_secret or "",
                    timeout_s=settings.offers.timeout.total_seconds(),
                )
                stack.push_async_callback(registrar.aclose)
            dispatcher = Dispatcher(
                engine=engine,
                flows=flows,
                channels=channels,
                composer=self._composer,
                guard_policy=guard_policy(settings),
                clock=self.clock,
                retry=RetryPolicy(
                    in_process_attempts=settings.channels.retry.in_process_attempts,
                    base_delay=settings.channels.retry.base_delay,
                    max_delay=settings.channels.retry.max_delay,
                    max_attempts=settings.channels.retry.max_attempts,
                    max_age=settings.channels.retry.max_age,
                ),
                registrar=registrar,
            )
            scheduler = Scheduler(
                engine=engine,
                rules=rules,
                dispatcher=dispatcher,
                clock=self.clock,
                settings=settings.scheduler,
            )
            relay = OutboxRelay(engine=engine, producer=producer, topics=settings.kafka.topics)

            broker = self._consumer(processor, stop)
            await broker.start()
            stack.push_async_callback(broker.stop)  # stops consuming first: runs before the relay's flush

            async def ready() -> bool:
                return bool(await broker.ping(timeout=2))

            app = create_app(engine=engine, settings=settings, clock=self.clock, ready=ready)
            http_started = asyncio.Event()
            tasks = [
                asyncio.create_task(scheduler.run(stop), name="scheduler"),
                asyncio.create_task(relay.run(stop), name="outbox-relay"),
                asyncio.create_task(
                    serve_http(app, host=settings.http.host, port=settings.http.port, stop=stop, started=http_started),
                    name="http",
                ),
            ]
            try:
                await _first_of(http_started.wait(), tasks[2])
                self.http_port = getattr(app.state, "http_port", None)
                if started is not None:
                    started.set()
                log.info("service running", extra={"bootstrap_servers": self.bootstrap_servers})
                await stop.wait()
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                for channel in self._channels.values():
                    await channel.aclose()

    def _consumer(self, processor: BatchProcessor, stop: asyncio.Event) -> KafkaBroker:
        """A FastStream batch subscriber on the four input topics, acking only after each commit."""
        kafka = self.settings.kafka
        broker = KafkaBroker(self.bootstrap_servers or "", logger=None)

        @broker.subscriber(
            *[topic.name for topic in kafka.topics.inputs()],
            group_id=kafka.group_id,
            batch=True,
            max_records=kafka.batch_size,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            decoder=_no_decoding,  # each record is decoded inside the handler, so one bad record costs itself
            parser=_tolerant_parser,
        )
        async def ingest(msg: KafkaMessage) -> None:
            records: Any = msg.raw_message
            backoff = Backoff("ingest (database or broker)")
            while True:
                try:
                    report = await processor.process(records)
                    break
                except Exception as exc:
                    # Poison was dead-lettered inside ``process``; what reaches here is the environment
                    # failing (or a bug): hold the batch unacked and retry with capped backoff.
                    if not is_outage(exc):
                        log.exception("batch failed unexpectedly; retrying", extra={"records": len(records)})
                    if stop.is_set():
                        return  # not acked: redelivered after restart
                    await backoff.wait(exc, stop)
            backoff.succeeded()
            await msg.ack()
            self.stats.add(report)

        return broker


async def _until_reachable(what: str, attempt: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Run ``attempt`` until it succeeds, backing off while the failure is an outage; other errors raise."""
    backoff = Backoff(what)
    while True:
        try:
            await attempt()
        except Exception as exc:
            if not is_outage(exc) or stop.is_set():
                raise
            await backoff.wait(exc, stop)
            continue
        backoff.succeeded()
        return


async def _tolerant_parser(
    records: tuple[Any, ...], original: Callable[[tuple[Any, ...]], Awaitable[StreamMessage[Any]]]
) -> StreamMessage[Any]:
    """FastStream decodes every header as UTF-8 before the handler: a bad header must not lose the batch."""
    try:
        return await original(records)
    except UnicodeDecodeError:
        # Ingest reads no header; dropping them keeps every record's bytes for decoding or dead-lettering.
        return await original(tuple(dataclasses.replace(record, headers=[]) for record in records))


async def _no_decoding(_msg: StreamMessage[Any]) -> DecodedMessage:
    """FastStream's decoder parses JSON before the handler, where a failure loses the batch: skip it."""
    return None


async def _first_of(waiting: Coroutine[Any, Any, Any], task: asyncio.Task[None]) -> None:
    """Wait for ``waiting``; if ``task`` ends first (e.g. the HTTP port is taken), raise its error."""
    waiter = asyncio.ensure_future(waiting)
    done, _ = await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()
        raise RuntimeError("the HTTP server stopped at start-up")
