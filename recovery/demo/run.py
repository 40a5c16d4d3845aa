"""``make demo``: the whole pipeline on the embedded default, a shop's day lived in virtual time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import shutil
import time
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from recovery.app.service import Service
from recovery.app.wiring import build_channels, build_composer
from recovery.attribution.queries import build_stats, render_html, render_table
from recovery.clock import AcceleratedClock
from recovery.demo.ab_split import save_demo_split
from recovery.demo.agents import AGENT_NAMES, DemoAgents
from recovery.demo.config import VIRTUAL_SPEED, demo_settings
from recovery.demo.pages import print_marketer_pages, serve_until_interrupted
from recovery.demo.shoppers import FEEDBACK_LINK, feedback_answer, organic_return, react_to_message
from recovery.demo.sinks.smtp import SmtpSink
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.demo.stream import generate
from recovery.demo.summary import Summary, read_summary
from recovery.ingest.kafka import Producer
from recovery.ingest.replay import publish_lines
from recovery.settings import Settings
from recovery.states import ChannelName, MessageState, StepStatus
from recovery.store.database import create_engine
from recovery.store.schema import carts, journeys, messages, steps

# long enough for the last flow step (26 h) and quiet-hour deferrals
VIRTUAL_SPAN = timedelta(hours=40)
MAX_REAL_SECONDS = 240.0  # the demo never runs longer than this, whatever the backlog
TRACKED_LINK = re.compile(r"https?://[^\s\"<>]+/[rs]/[A-Za-z0-9._-]+")  # signed (/r/) or SMS short (/s/) links


def _fresh_directory(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


async def run_demo(base: Settings, *, carts: int, workdir: Path, console: Console, stay_up: bool = False) -> Summary:
    """Start local SMTP and SMS sinks and the service, replay events, let virtual time run, report.

    With ``stay_up`` (a terminal), the studio and dashboard stay reachable afterwards until Ctrl-C.
    """
    await asyncio.to_thread(_fresh_directory, workdir)
    with SmtpSink() as smtp, FakeTwilio() as twilio:
        summary, settings, port = await _run(
            base, carts=carts, workdir=workdir, console=console, smtp=smtp, twilio=twilio
        )
        console.print(
            f"Local sinks received {len(smtp.received)} emails (SMTP {smtp.host}:{smtp.port}) and "
            f"{len(twilio.messages)} SMS (Twilio-compatible API {twilio.url})."
        )
        if smtp.received:
            sample = workdir / "sample-email.eml"
            await asyncio.to_thread(sample.write_bytes, smtp.received[0].raw)
            console.print(f"One of them, as delivered: {sample}")
        print_marketer_pages(console, settings, port)
        if stay_up:
            await serve_until_interrupted(settings, port, console)
    return summary


async def _run(
    base: Settings, *, carts: int, workdir: Path, console: Console, smtp: SmtpSink, twilio: FakeTwilio
) -> tuple[Summary, Settings, int | None]:
    settings = demo_settings(base, workdir, smtp, twilio)
    clock = AcceleratedClock(speed=VIRTUAL_SPEED)
    service = Service(settings, channels=build_channels(settings), composer=build_composer(settings), clock=clock)
    stop, started = asyncio.Event(), asyncio.Event()
    console.print(
        f"[bold]cart-recovery demo[/]: bundled Kafka broker + SQLite, virtual time x{VIRTUAL_SPEED:.0f}, "
        "local SMTP and SMS sinks"
    )
    await save_demo_split(settings, clock, console)
    running = asyncio.create_task(service.run(stop, started=started))
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([running, waiter], return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        waiter.cancel()
        await running  # raises the start-up error
    _print_desk(console, service)
    print_marketer_pages(console, settings, service.http_port)
    sample = resources.files("recovery.demo.data").joinpath("sample_events.jsonl").read_bytes().splitlines()
    lines = [line for line in sample if line.strip()] + generate(carts, now=clock.now())
    try:
        await _replay(service, lines, console)
        await _live(service, clock, console)
    finally:
        stop.set()
        await running
    engine = create_engine(settings.database.url)
    try:
        summary = await read_summary(engine)
        stats = await build_stats(engine, since=None, now=clock.now())
    finally:
        await engine.dispose()
    print_summary(console, summary, service)
    render_table(stats, console)
    report = workdir.parent / "report.html"
    await asyncio.to_thread(render_html, stats, report)
    console.print(f"HTML report with charts: {report}")
    return summary, settings, service.http_port


async def _replay(service: Service, lines: list[bytes], console: Console) -> None:
    producer = Producer(service.bootstrap_servers or "")
    await producer.start()
    try:
        with _progress(console) as progress:
            publish = progress.add_task("publishing shop events", total=len(lines))
            ingest = progress.add_task("ingesting", total=len(lines))
            sending = asyncio.create_task(
                publish_lines(
                    producer,
                    lines,
                    service.settings.kafka.topics,
                    progress=lambda n: progress.advance(publish, n),
                )
            )
            while service.stats.received < len(lines):
                progress.update(ingest, completed=service.stats.received)
                if sending.done() and sending.exception():
                    raise sending.exception()  # type: ignore[misc]
                await asyncio.sleep(0.1)
            progress.update(ingest, completed=service.stats.received)
            await sending
    finally:
        await producer.stop()


async def _live(service: Service, clock: AcceleratedClock, console: Console) -> None:
    """Let virtual time run: shoppers answer messages (click, buy) until every step has played out."""
    assert service.engine is not None
    start = clock.now()
    span = VIRTUAL_SPAN.total_seconds()
    shoppers = Shoppers(service, clock)
    await shoppers.start()
    agents = DemoAgents(
        base_url=f"http://127.0.0.1:{service.http_port}",
        tokens=service.settings.security.api_tokens,
        clock=clock,
        on_recovered=shoppers.plan_order,
    )
    real_start = time.monotonic()
    try:
        with _progress(console) as progress:
            task = progress.add_task("virtual hours elapsed", total=int(span // 3600))
            while True:
                elapsed = (clock.now() - start).total_seconds()
                progress.update(task, completed=min(int(elapsed // 3600), int(span // 3600)))
                await shoppers.step()
                await agents.step()
                backlog = await _due_backlog(service, clock.now())
                if elapsed >= span and backlog == 0 and not shoppers.waiting:
                    break
                if time.monotonic() - real_start > MAX_REAL_SECONDS:
                    console.print(f"[yellow]stopping after {MAX_REAL_SECONDS:.0f} s with {backlog} steps still due[/]")
                    break
                await asyncio.sleep(0.25)
    finally:
        await shoppers.stop()
        await agents.aclose()
    console.print(f"Demo agents completed {agents.calls} calls from the callback queue.")
    await asyncio.sleep(1.0)  # let the last orders be ingested and the outbox relay publish


async def _due_backlog(service: Service, now: datetime) -> int:
    """Steps already due but not fired yet: the demo waits for the scheduler to catch up."""
    assert service.engine is not None
    async with service.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(steps)
            .where(steps.c.status.in_([StepStatus.PENDING, StepStatus.CLAIMED]), steps.c.due_at <= now)
        )
    return int(count or 0)


class Shoppers:
    """The demo's shoppers: they read what the service sent them, click real tracked links, and buy."""

    def __init__(self, service: Service, clock: AcceleratedClock) -> None:
        self._service = service
        self._clock = clock
        self._rng = random.Random(11)
        self._seen_messages: set[str] = set()
        self._seen_journeys: set[str] = set()
        self._ordered: set[str] = set()
        self._orders: list[tuple[datetime, str]] = []  # (virtual time, cart id)
        self._watermark = clock.now() - timedelta(days=1)
        self._producer = Producer(service.bootstrap_servers or "")
        self._http = httpx.AsyncClient(timeout=5)

    @property
    def waiting(self) -> bool:
        """True while some shopper still means to buy."""
        return bool(self._orders)

    def plan_order(self, cart_id: str, at: datetime) -> None:
        """The shopper will buy at ``at`` (an agent's call convinced them)."""
        self._orders.append((at, cart_id))

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()
        await self._http.aclose()

    async def step(self) -> None:
        """React to new messages and new journeys, then place the orders that are due."""
        now = self._clock.now()
        engine = self._service.engine
        assert engine is not None
        # Only rows since the last look (minus a margin for rows committed late): the tables keep growing.
        since = self._watermark - timedelta(hours=2)
        self._watermark = now
        async with engine.connect() as conn:
            sent = await conn.execute(
                select(messages.c.message_id, messages.c.cart_id, messages.c.channel, messages.c.content).where(
                    messages.c.state == MessageState.SENT, messages.c.sent_at >= since
                )
            )
            new_messages = [row for row in sent if row.message_id not in self._seen_messages]
            started = await conn.execute(
                select(journeys.c.journey_id, journeys.c.cart_id).where(journeys.c.started_at >= since)
            )
            new_journeys = [row for row in started if row.journey_id not in self._seen_journeys]
        for row in new_messages:
            self._seen_messages.add(row.message_id)
            reaction = react_to_message(self._rng, ChannelName(row.channel))
            if reaction.click:
                await self._click(row.content or {})
            answer = feedback_answer(self._rng, str((row.content or {}).get("html") or ""))
            if answer is not None:
                await self._click({"text": answer}, pattern=FEEDBACK_LINK)
            if reaction.buy:
                self._orders.append((now + reaction.delay, row.cart_id))
        for journey in new_journeys:
            self._seen_journeys.add(journey.journey_id)
            organic = organic_return(self._rng)
            if organic is not None:
                self._orders.append((now + organic.delay, journey.cart_id))
        due = [cart_id for at, cart_id in self._orders if at <= now]
        self._orders = [(at, cart_id) for at, cart_id in self._orders if at > now]
        await self._buy([cart_id for cart_id in dict.fromkeys(due) if cart_id not in self._ordered], now)

    async def _click(self, content: dict[str, object], pattern: re.Pattern[str] = TRACKED_LINK) -> None:
        links = pattern.findall(str(content.get("text", "")))
        if not links:
            return
        public = self._service.settings.http.public_url
        local = f"http://127.0.0.1:{self._service.http_port}"
        with contextlib.suppress(httpx.HTTPError):
            await self._http.get(links[0].replace(public, local), headers={"User-Agent": "Mozilla/5.0 (demo)"})

    async def _buy(self, cart_ids: list[str], now: datetime) -> None:
        if not cart_ids:
            return
        engine = self._service.engine
        assert engine is not None
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(carts.c.cart_id, carts.c.value, carts.c.currency, carts.c.ordered_at, carts.c.store).where(
                    carts.c.cart_id.in_(cart_ids)
                )
            )
            found = [row for row in rows if row.ordered_at is None and row.value is not None]
        orders = []
        for row in found:
            self._ordered.add(row.cart_id)
            order = {
                "id": f"demo-order-{row.cart_id}",
                "type": "order.completed",
                "occurred_at": now.isoformat(),
                "store": row.store,
                "cart_id": row.cart_id,
                "order": {"id": f"ord-{row.cart_id}", "value": float(row.value), "currency": row.currency or "EUR"},
            }
            orders.append((row.cart_id, json.dumps(order).encode()))
        await self._producer.send_many(self._service.settings.kafka.topics.order.name, orders)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _print_desk(console: Console, service: Service) -> None:
    """Where to watch the agents' desk while the demo runs, and a token to sign in with."""
    token = next(t for t, entry in service.settings.security.api_tokens.items() if entry.name in AGENT_NAMES)
    console.print(
        f"Agents' desk (while the demo runs): {service.settings.http.public_url}/agent "
        f"— sign in with the agent token [bold]{token}[/]"
    )


def print_summary(console: Console, summary: Summary, service: Service) -> None:
    """The demo's closing report."""
    stats = service.stats
    console.print(
        f"\nEvents: {stats.received} received, {stats.applied} applied, {stats.duplicates} duplicates, "
        f"{stats.rejected} rejected to the dead-letter topic"
    )
    console.print(f"Carts: {summary.carts}, ordered {summary.ordered}, abandoned {summary.abandoned}")
    journeys = Table(title="Journeys")
    journeys.add_column("flow")
    journeys.add_column("status")
    journeys.add_column("count", justify="right")
    for (flow, status), n in sorted(summary.journeys_by_flow_status.items()):
        journeys.add_row(flow, status, str(n))
    console.print(journeys)
    steps = Table(title="Steps")
    steps.add_column("status")
    steps.add_column("count", justify="right")
    for status, n in sorted(summary.steps_by_status.items()):
        steps.add_row(status, str(n))
    for reason, n in sorted(summary.skip_reasons.items()):
        steps.add_row(f"  skipped: {reason}", str(n))
    console.print(steps)
    sent = Table(title="Messages")
    sent.add_column("channel")
    sent.add_column("state")
    sent.add_column("count", justify="right")
    for (channel, state), n in sorted(summary.messages_by_channel_state.items()):
        sent.add_row(channel, state, str(n))
    console.print(sent)
    console.print(f"Sent {summary.sent} messages; {summary.converted} journeys converted.")
