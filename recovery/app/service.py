"""The service: Kafka consumer, scheduler, outbox relay and HTTP app, with one owned lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api.app import create_app
from recovery.api.health_routes import HttpMetrics
from recovery.api.platforms.ingest_routes import attach_ingest
from recovery.api.server import serve_http
from recovery.app.components import build_dispatcher, build_processor, build_scheduler, discount_registrar
from recovery.app.lifecycle import StoppedWhileWaiting, first_of, until_reachable, until_stop_or_death
from recovery.app.roles import Parts, Role, parts_of
from recovery.app.startup import StartUp
from recovery.channels.base import Channel
from recovery.channels.requirements import channel_destinations
from recovery.clock import Clock, SystemClock
from recovery.desk.webhook import WebhookSender
from recovery.ingest.consumer import IngestConsumer, IngestStats
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer, ensure_topics
from recovery.ingest.platform_formats import PlatformSkips
from recovery.ingest.relay import OutboxRelay
from recovery.ingest.security import describe as describe_security
from recovery.ops.instruments import CountedDeadLetters, TimedChannel, count_batch
from recovery.ops.metrics import ServiceMetrics, config_digest
from recovery.ops.peers import Peers
from recovery.ops.sampler import run_sampler, sample_lag
from recovery.ops.tracing import asgi_middleware
from recovery.ops.worker_slot import WorkerSlot
from recovery.render.composer import TemplateComposer
from recovery.render.live import LiveTemplates
from recovery.rules import load_flows
from recovery.rules.live_flows import LiveFlows
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.steps.dispatch import Dispatcher
from recovery.steps.rendering import Composer
from recovery.store.database import create_engine
from recovery.store.migrate import ensure_schema_for_run

log = logging.getLogger(__name__)


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
        worker: WorkerSlot | None = None,
    ) -> None:
        self.settings = settings
        self.role = role
        self.worker = worker  # one consumer of `--workers N`; None when this process runs alone
        self.clock = clock or SystemClock()
        self.stats = IngestStats()
        self.platform_skips = PlatformSkips()  # skipped platform types, Kafka and webhooks alike
        self.producer: Producer | None = None
        self._channels = channels
        self._composer = composer
        self.bootstrap_servers: str | None = None
        self.engine: AsyncEngine | None = None
        self.http_port: int | None = None
        self.flows: LiveFlows | None = None  # the flows new journeys start with (saved versions included)
        self.metrics: ServiceMetrics | None = None
        self._kafka_consumers: Callable[[], list[Any]] = list
        self._app: FastAPI | None = None

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
            self.flows = flows = LiveFlows(load_flows(settings.flows_file))
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
                if self.worker is not None:
                    self._join_group(stack, self.worker)
                await self._open_database(engine, start_up, stop)
                # Saved flow versions start new journeys from the first event, then within seconds of every save.
                await flows.refresh(engine)
                # The API role reads and writes the database only: the scheduler role relays its outbox events.
                producer = await self._open_broker(stack, start_up, stop) if parts.kafka else None
                if parts.consumer and producer is not None:
                    broker_ready = await self._start_consumer(stack, flows, producer, stop)
                if parts.scheduler and producer is not None:
                    tasks += await self._start_scheduler(stack, flows, producer, stop)
                tasks.append(asyncio.create_task(flows.run(engine, stop), name="flow-refresh"))
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
        self.producer = producer
        if self._app is not None:  # the platforms' webhooks publish through it from now on
            attach_ingest(self._app, publisher=producer, skips=self.platform_skips)
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
        # Webhooks publish through the producer once the broker is open (503 until then).
        self._app = app
        attach_ingest(app, publisher=self.producer, skips=self.platform_skips)
        if (tracing := asgi_middleware()) is not None:
            app.add_middleware(tracing)
        http_started = asyncio.Event()
        http = asyncio.create_task(
            serve_http(
                app,
                host=settings.http.host,
                port=settings.http.port,
                stop=stop,
                started=http_started,
                head_timeout_s=settings.http.read_timeout.total_seconds(),
            ),
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

    def _join_group(self, stack: contextlib.AsyncExitStack, worker: WorkerSlot) -> None:
        """One worker of `--workers N`: worker 0's /metrics and /readyz answer for the group (ops/peers.py); the
        others tell it their port. Lag is read at scrape time, so a partition lost in a rebalance is not shown."""
        assert self._app is not None, "joined once HTTP listens"
        http: HttpMetrics = self._app.state.metrics
        metrics = self._metrics()
        http.refresh = lambda: sample_lag(self._kafka_consumers(), metrics)
        if worker.front:
            http.peers = peers = Peers(worker)
            stack.push_async_callback(peers.aclose)  # after HTTP has stopped (its task is awaited first)
        else:
            http.database_gauges = False  # worker 0 reads them for the page
            assert self.http_port is not None, "announced once HTTP listens"
            worker.announce(self.http_port)

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
        self, stack: contextlib.AsyncExitStack, flows: LiveFlows, producer: Producer, stop: asyncio.Event
    ) -> Callable[[], Awaitable[bool]]:
        """Start the Kafka batch consumer (stopped before the producer); returns its readiness check."""
        settings, engine = self.settings, self._engine()
        processor = build_processor(
            settings,
            engine=engine,
            flows=flows,
            clock=self.clock,
            dead_letters=CountedDeadLetters(producer, self._metrics()),
            skips=self.platform_skips,
        )
        consumer = IngestConsumer(self.bootstrap_servers or "", settings.kafka, processor, self.stats, stop)
        await consumer.start()
        stack.push_async_callback(consumer.stop)  # stops consuming first: runs before the relay's flush
        self._kafka_consumers = lambda: [consumer.consumer]

        async def ready() -> bool:
            return await consumer.ping(within_s=2)

        return ready

    async def _start_scheduler(
        self, stack: contextlib.AsyncExitStack, flows: LiveFlows, producer: Producer, stop: asyncio.Event
    ) -> list[asyncio.Task[None]]:
        """Start the scheduler (due steps through the dispatcher) and the outbox relay."""
        settings, engine = self.settings, self._engine()
        dispatcher = self._dispatcher(stack, flows)
        scheduler = build_scheduler(settings, engine=engine, flows=flows, dispatcher=dispatcher, clock=self.clock)
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
                # Its own secret, shared with the helpdesk; never the link secret (``check`` refuses without it).
                secret=hook.webhook_secret or "",
                attempts=hook.webhook_attempts,
            )
            tasks.append(asyncio.create_task(sender.run(stop), name="callback-webhook"))
        return tasks

    def _dispatcher(self, stack: contextlib.AsyncExitStack, flows: LiveFlows) -> Dispatcher:
        """The dispatcher firing due steps, with the shop's discount hook when one is set (closed on the way out);
        every channel's sends are timed and counted in ``/metrics``."""
        registrar = discount_registrar(self.settings)
        if registrar is not None:
            stack.push_async_callback(registrar.aclose)
        metrics = self._metrics()
        return build_dispatcher(
            self.settings,
            engine=self._engine(),
            flows=flows,
            channels=self._channels,
            composer=self._composer,
            clock=self.clock,
            registrar=registrar,
            instrument=lambda channel: TimedChannel(channel, metrics),
        )

    def _metrics(self) -> ServiceMetrics:
        assert self.metrics is not None, "run() starts HTTP (and its metrics) first"
        return self.metrics

    def _engine(self) -> AsyncEngine:
        assert self.engine is not None, "run() creates the engine first"
        return self.engine
