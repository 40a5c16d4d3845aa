"""The service: Kafka subscriber, scheduler, outbox relay and HTTP app, with one owned lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.api.app import create_app
from recovery.api.platforms.ingest_routes import attach_ingest
from recovery.api.server import serve_http
from recovery.app.components import build_dispatcher, build_processor, build_scheduler, discount_registrar
from recovery.app.lifecycle import StoppedWhileWaiting, first_of, until_reachable, until_stop_or_death
from recovery.app.roles import Parts, Role, parts_of
from recovery.channels.base import Channel
from recovery.channels.requirements import channel_destinations
from recovery.clock import Clock, SystemClock
from recovery.desk.webhook import WebhookSender
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer, ensure_topics
from recovery.ingest.platform_formats import PlatformSkips
from recovery.ingest.relay import OutboxRelay
from recovery.ingest.subscriber import IngestStats, subscriber
from recovery.render.composer import TemplateComposer
from recovery.render.live import LiveTemplates
from recovery.rules import load_flows
from recovery.rules.live_flows import LiveFlows
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.steps.dispatch import Composer, Dispatcher
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
    ) -> None:
        self.settings = settings
        self.role = role
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
        """Open the database and broker, start this role's parts, serve until ``stop``."""
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            self.flows = flows = LiveFlows(load_flows(settings.flows_file))
            engine = await self._open_database(stack, stop)
            # Saved flow versions start new journeys from the first event, then within seconds of every save.
            await flows.refresh(engine)
            # The API role reads and writes the database only: the scheduler role relays its outbox events.
            producer = await self._open_broker(stack, stop) if parts.kafka else None
            tasks: list[asyncio.Task[None]] = []
            broker_ready = None
            if parts.consumer and producer is not None:
                broker_ready = await self._start_consumer(stack, flows, producer, stop)
            if parts.scheduler and producer is not None:
                tasks += await self._start_scheduler(stack, flows, producer, stop)
            tasks.append(asyncio.create_task(flows.run(engine, stop), name="flow-refresh"))
            if isinstance(self._composer, TemplateComposer):
                # Saved versions are live from the first message, then within seconds of every save.
                await self._composer.live.refresh(engine)
                tasks.append(asyncio.create_task(self._composer.live.run(engine, stop), name="template-refresh"))

            async def ready() -> bool:
                # Not ready as soon as any part is down: a dead task, or a broker we cannot reach.
                alive = all(not task.done() for task in tasks)
                return alive and (broker_ready is None or await broker_ready())

            await self._serve_until_stop(engine, ready, tasks, stop, started)

    async def _open_database(self, stack: contextlib.AsyncExitStack, stop: asyncio.Event) -> AsyncEngine:
        """The engine, once the schema is there (disposed on the way out)."""
        self.engine = engine = create_engine(self.settings.database.url, senders=self.settings.channels.concurrency)
        stack.push_async_callback(engine.dispose)
        # Started during an outage (a restart, say): wait for the database instead of exiting.
        await until_reachable("database at start-up", lambda: ensure_schema_for_run(engine), stop)
        return engine

    async def _open_broker(self, stack: contextlib.AsyncExitStack, stop: asyncio.Event) -> Producer:
        """The embedded or configured broker with its topics, and a started producer (stopped on the way out)."""
        kafka = self.settings.kafka
        if kafka.embedded:
            embedded = EmbeddedBroker()
            await asyncio.to_thread(embedded.start)
            stack.callback(embedded.stop)
            self.bootstrap_servers = bootstrap = embedded.bootstrap_servers
        else:
            self.bootstrap_servers = bootstrap = kafka.bootstrap_servers
        await until_reachable("broker at start-up", lambda: ensure_topics(bootstrap, kafka), stop)
        producer = Producer(bootstrap)
        await producer.start()
        stack.push_async_callback(producer.stop)
        self.producer = producer
        return producer

    async def _serve_until_stop(
        self,
        engine: AsyncEngine,
        ready: Callable[[], Awaitable[bool]],
        tasks: list[asyncio.Task[None]],
        stop: asyncio.Event,
        started: asyncio.Event | None,
    ) -> None:
        """Serve HTTP until ``stop`` or a part dies; then stop every task and close the channels."""
        settings = self.settings
        app = create_app(engine=engine, settings=settings, clock=self.clock, ready=ready)
        attach_ingest(app, publisher=self.producer, skips=self.platform_skips)  # webhooks publish to the topics
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
            self.http_port = getattr(app.state, "http_port", None)
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
            settings, engine=engine, flows=flows, clock=self.clock, dead_letters=producer, skips=self.platform_skips
        )
        broker = subscriber(self.bootstrap_servers or "", settings.kafka, processor, self.stats, stop)
        await broker.start()
        stack.push_async_callback(broker.stop)  # stops consuming first: runs before the relay's flush

        async def ready() -> bool:
            return bool(await broker.ping(timeout=2))

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
        """The dispatcher firing due steps, with the shop's discount hook when one is set (closed on the way out)."""
        registrar = discount_registrar(self.settings)
        if registrar is not None:
            stack.push_async_callback(registrar.aclose)
        return build_dispatcher(
            self.settings,
            engine=self._engine(),
            flows=flows,
            channels=self._channels,
            composer=self._composer,
            clock=self.clock,
            registrar=registrar,
        )

    def _engine(self) -> AsyncEngine:
        assert self.engine is not None, "run() creates the engine first"
        return self.engine
