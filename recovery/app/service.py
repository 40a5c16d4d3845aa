"""The service: consumer, scheduler, outbox relay and HTTP app, with one owned lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from faststream.types import DecodedMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api.app import create_app
from recovery.api.server import serve_http
from recovery.app.lifecycle import StoppedWhileWaiting, first_of, until_reachable, until_stop_or_death
from recovery.app.policies import build_rules, channel_rates, guard_policy
from recovery.app.roles import Parts, Role, parts_of
from recovery.app.startup import StartUp
from recovery.backoff import Backoff, is_outage
from recovery.channels.base import Channel
from recovery.channels.callback import CallbackChannel
from recovery.channels.requirements import channel_destinations
from recovery.clock import Clock, SystemClock
from recovery.desk.webhook import WebhookSender
from recovery.ingest.consumer import BatchProcessor, BatchReport
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer, ensure_topics
from recovery.ingest.relay import OutboxRelay
from recovery.ingest.security import describe as describe_security
from recovery.ingest.security import faststream_security
from recovery.ops.instruments import CountedDeadLetters, TimedChannel, count_batch
from recovery.ops.metrics import ServiceMetrics, config_digest
from recovery.ops.sampler import run_sampler
from recovery.ops.tracing import asgi_middleware, kafka_middlewares
from recovery.render.composer import TemplateComposer
from recovery.render.live import LiveTemplates
from recovery.rules import Flows, load_flows
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.steps.discount_hook import DiscountRegistrar
from recovery.steps.dispatch import Composer, Dispatcher, RetryPolicy
from recovery.steps.scheduler import Scheduler
from recovery.store.database import create_engine
from recovery.store.migrate import ensure_schema_for_run

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
    listener: Callable[[BatchReport], None] | None = field(default=None, repr=False)  # e.g. the metrics

    def add(self, report: BatchReport) -> None:
        self.received += report.received
        self.rejected += report.rejected
        self.duplicates += report.duplicates
        self.applied += report.applied
        self.batches += 1
        self.last = report
        if self.listener is not None:
            self.listener(report)


class Service:
    """Everything ``recovery run`` runs, started and stopped as one unit."""

    def __init__(
        self,
        settings: Settings,
        *,
        channels: Mapping[ChannelName, Channel],
        composer: Composer,
        clock: Clock | None = None,
        role: Role = "all",
    ) -> None:
        self.settings = settings
        self.role = role
        self.clock = clock or SystemClock()
        self.stats = IngestStats()
        self._channels = channels
        self._composer = composer
        self.bootstrap_servers: str | None = None
        self.engine: AsyncEngine | None = None
        self.http_port: int | None = None
        self.metrics: ServiceMetrics | None = None
        self._kafka_consumers: Callable[[], list[Any]] = list

    @property
    def live_templates(self) -> LiveTemplates | None:
        """The templates messages render with now (saved versions included), when rendered from templates."""
        return self._composer.live if isinstance(self._composer, TemplateComposer) else None

    async def run(self, stop: asyncio.Event, *, started: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set; every resource is released on the way out."""
        settings = self.settings
        for name, where in channel_destinations(settings).items():
            # One line per channel, so an operator sees at once whether messages really leave (no credentials).
            log.info("channel %s sends to %s", name, where, extra={"channel": name})
        parts = parts_of(self.role, embedded_broker=settings.kafka.embedded)
        try:
            await self._run_parts(parts, stop, started)
        except StoppedWhileWaiting as waiting:
            # SIGTERM while the database or broker was still unreachable: a clean stop, not a crash.
            log.info("stopped before start-up completed (%s was unreachable)", waiting.what)

    async def _run_parts(self, parts: Parts, stop: asyncio.Event, started: asyncio.Event | None) -> None:
        """Serve HTTP at once, then open the database and broker, start this role's parts, serve until ``stop``."""
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            flows = load_flows(settings.flows_file)
            database = settings.database
            self.engine = engine = create_engine(
                database.url,
                senders=settings.channels.concurrency,
                pool_size=database.pool_size,
                max_overflow=database.max_overflow,
            )
            stack.push_async_callback(engine.dispose)
            start_up = StartUp()
            tasks: list[asyncio.Task[None]] = []
            broker_ready: Callable[[], Awaitable[bool]] | None = None

            async def ready() -> bool:
                # Not ready while start-up waits (naming why), nor once any part is down: a dead task, or a
                # broker the consumer cannot reach. The `all` role keeps the shopper paths up in a Kafka outage.
                start_up.check()
                alive = all(not task.done() for task in tasks)
                kafka_counts = broker_ready is not None and self.role != "all"
                return alive and (not kafka_counts or await broker_ready())  # type: ignore[misc]

            # /healthz answers while the database or the broker is still unreachable (no start-up probe kill).
            await self._start_http(engine, ready, tasks, stop)
            try:
                await self._open_database(engine, start_up, stop)
                # The API role reads and writes the database only: the scheduler role relays its outbox events.
                producer = await self._open_broker(stack, start_up, stop) if parts.kafka else None
                if parts.consumer and producer is not None:
                    broker_ready = await self._start_consumer(stack, flows, producer, stop)
                if parts.scheduler and producer is not None:
                    tasks += await self._start_scheduler(stack, flows, producer, stop)
                if isinstance(self._composer, TemplateComposer):
                    # Saved versions are live from the first message, then within seconds of every save.
                    await self._composer.live.refresh(engine)
                    tasks.append(asyncio.create_task(self._composer.live.run(engine, stop), name="template-refresh"))
                tasks.append(self._start_metrics(stop))
                start_up.completed()
                await self._serve_until_stop(tasks, stop, started)
            except BaseException:
                stop.set()  # start-up failed or was stopped: let HTTP finish before the engine is disposed
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    async def _open_database(self, engine: AsyncEngine, start_up: StartUp, stop: asyncio.Event) -> None:
        """Wait until the database answers with the right schema (started during an outage: wait, not exit)."""
        await until_reachable(
            "database at start-up", start_up.guarded("database", lambda: ensure_schema_for_run(engine)), stop
        )

    async def _open_broker(self, stack: contextlib.AsyncExitStack, start_up: StartUp, stop: asyncio.Event) -> Producer:
        """The embedded or configured broker with its topics, and a started producer (stopped on the way out)."""
        kafka = self.settings.kafka
        if kafka.embedded:
            embedded = EmbeddedBroker()
            await asyncio.to_thread(embedded.start)
            stack.callback(embedded.stop)
            self.bootstrap_servers = bootstrap = embedded.bootstrap_servers
        else:
            self.bootstrap_servers = bootstrap = kafka.bootstrap_servers
            log.info("kafka connection: %s", describe_security(kafka.security), extra={"bootstrap_servers": bootstrap})
        await until_reachable(
            "broker at start-up", start_up.guarded("broker", lambda: ensure_topics(bootstrap, kafka)), stop
        )
        producer = Producer(bootstrap, kafka.security)
        await producer.start()
        stack.push_async_callback(producer.stop)
        return producer

    async def _start_http(
        self,
        engine: AsyncEngine,
        ready: Callable[[], Awaitable[bool]],
        tasks: list[asyncio.Task[None]],
        stop: asyncio.Event,
    ) -> None:
        """Serve HTTP (added to ``tasks``) and wait until it listens; the port taken raises here."""
        settings = self.settings
        app = create_app(engine=engine, settings=settings, clock=self.clock, ready=ready)
        if (tracing := asgi_middleware()) is not None:
            app.add_middleware(tracing)
        http_started = asyncio.Event()
        http = asyncio.create_task(
            serve_http(app, host=settings.http.host, port=settings.http.port, stop=stop, started=http_started),
            name="http",
        )
        tasks.append(http)
        try:
            await first_of(http_started.wait(), http)
        except BaseException:
            stop.set()
            await asyncio.gather(http, return_exceptions=True)
            raise
        self.http_port = getattr(app.state, "http_port", None)
        self.metrics = metrics = ServiceMetrics(app.state.metrics.registry)
        self.stats.listener = lambda report: count_batch(metrics, report)

    def _start_metrics(self, stop: asyncio.Event) -> asyncio.Task[None]:
        """The periodic gauges (due steps, lag) and the flows / templates versions in use."""
        metrics, engine = self._metrics(), self._engine()
        flows_version = config_digest(self.settings.flows_file.read_bytes())

        def versions() -> None:
            live = self.live_templates  # saved template versions go live within seconds: follow them
            saved = sorted(live.versions.items()) if live is not None else []
            metrics.set_config(flows=flows_version, templates=config_digest(saved) if saved else "files")

        versions()
        sampler = run_sampler(engine, metrics, self.clock, stop, consumers=self._kafka_consumers, on_sample=versions)
        return asyncio.create_task(sampler, name="metrics-sampler")

    async def _serve_until_stop(
        self, tasks: list[asyncio.Task[None]], stop: asyncio.Event, started: asyncio.Event | None
    ) -> None:
        """Serve until ``stop`` or a part dies; then stop every task and close the channels."""
        try:
            if started is not None:
                started.set()
            log.info("service running", extra={"role": self.role, "bootstrap_servers": self.bootstrap_servers})
            await until_stop_or_death(stop, tasks)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            for channel in self._channels.values():
                await channel.aclose()

    async def _start_consumer(
        self, stack: contextlib.AsyncExitStack, flows: Flows, producer: Producer, stop: asyncio.Event
    ) -> Callable[[], Awaitable[bool]]:
        """Start the Kafka batch consumer (stopped before the producer); returns its readiness check."""
        settings, engine = self.settings, self._engine()
        processor = BatchProcessor(
            engine=engine,
            rules=build_rules(settings, flows),
            clock=self.clock,
            dead_letters=CountedDeadLetters(producer, self._metrics()),
            dead_letter_topic=settings.kafka.topics.dead_letter.name,
            attribution=settings.attribution,
            max_event_bytes=settings.ingest.max_event_bytes,
        )
        broker = self._consumer(processor, stop)
        await broker.start()
        stack.push_async_callback(broker.stop)  # stops consuming first: runs before the relay's flush
        self._kafka_consumers = lambda: [getattr(sub, "consumer", None) for sub in broker.subscribers]

        async def ready() -> bool:
            return bool(await broker.ping(timeout=2))

        return ready

    async def _start_scheduler(
        self, stack: contextlib.AsyncExitStack, flows: Flows, producer: Producer, stop: asyncio.Event
    ) -> list[asyncio.Task[None]]:
        """Start the scheduler (due steps through the dispatcher) and the outbox relay."""
        settings, engine = self.settings, self._engine()
        dispatcher = self._dispatcher(stack, flows)
        scheduler = Scheduler(
            engine=engine,
            rules=build_rules(settings, flows),
            dispatcher=dispatcher,
            clock=self.clock,
            settings=settings.scheduler,
            concurrency=settings.channels.concurrency,
            rates=channel_rates(settings),
            calling_hours=settings.callbacks.calling_hours(),
        )
        relay = OutboxRelay(engine=engine, producer=producer, topics=settings.kafka.topics)
        tasks = [
            asyncio.create_task(scheduler.run(stop), name="scheduler"),
            asyncio.create_task(relay.run(stop), name="outbox-relay"),
        ]
        hook = settings.callbacks
        if hook.webhook_url:
            sender = WebhookSender(
                engine=engine,
                clock=self.clock,
                url=hook.webhook_url,
                secret=hook.webhook_secret or settings.security.link_secret or "",
                attempts=hook.webhook_attempts,
            )
            tasks.append(asyncio.create_task(sender.run(stop), name="callback-webhook"))
        return tasks

    def _dispatcher(self, stack: contextlib.AsyncExitStack, flows: Flows) -> Dispatcher:
        """The dispatcher firing due steps: provider channels, the callback channel, guards and retries."""
        settings, engine = self.settings, self._engine()
        metrics = self._metrics()
        channels: dict[ChannelName, Channel] = {name: TimedChannel(ch, metrics) for name, ch in self._channels.items()}
        # Callbacks need the database (tasks); offers go out through the SMS channel.
        callback = CallbackChannel(
            engine=engine,
            clock=self.clock,
            offer_channel=channels[ChannelName.SMS],
            hours=settings.callbacks.calling_hours(),
        )
        channels[ChannelName.CALLBACK] = TimedChannel(callback, metrics)
        registrar = None
        if settings.offers.register_url:
            registrar = DiscountRegistrar(
                url=settings.offers.register_url,
                secret=settings.security.link_secret or "",
                timeout_s=settings.offers.timeout.total_seconds(),
            )
            stack.push_async_callback(registrar.aclose)
        retry = settings.channels.retry
        return Dispatcher(
            engine=engine,
            flows=flows,
            channels=channels,
            composer=self._composer,
            guard_policy=guard_policy(settings),
            clock=self.clock,
            retry=RetryPolicy(
                in_process_attempts=retry.in_process_attempts,
                base_delay=retry.base_delay,
                max_delay=retry.max_delay,
                max_attempts=retry.max_attempts,
                max_age=retry.max_age,
            ),
            registrar=registrar,
        )

    def _metrics(self) -> ServiceMetrics:
        assert self.metrics is not None, "run() starts HTTP (and its metrics) first"
        return self.metrics

    def _engine(self) -> AsyncEngine:
        assert self.engine is not None, "run() creates the engine first"
        return self.engine

    def _consumer(self, processor: BatchProcessor, stop: asyncio.Event) -> KafkaBroker:
        """A FastStream batch subscriber on the four input topics, acking only after each commit."""
        kafka = self.settings.kafka
        broker = KafkaBroker(
            self.bootstrap_servers or "",
            logger=None,
            security=faststream_security(kafka.security),
            middlewares=kafka_middlewares(),
        )

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
