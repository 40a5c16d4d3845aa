"""``make demo``: the whole pipeline on the embedded default, a shop's day lived in virtual time."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from datetime import timedelta
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from recovery.clock import AcceleratedClock
from recovery.demo_stream import generate
from recovery.embedded_broker import free_port
from recovery.kafka_io import Producer
from recovery.replay import publish_lines
from recovery.service import Service
from recovery.settings import Settings
from recovery.sinks.smtp import SmtpSink
from recovery.sinks.twilio import FakeTwilio
from recovery.store.database import create_engine
from recovery.summary import Summary, read_summary
from recovery.wiring import build_channels, build_composer

VIRTUAL_SPEED = 7200.0  # two virtual hours per real second: a day and a half in ~20 s
VIRTUAL_SPAN = timedelta(hours=40)  # long enough for the last flow step (26 h) and quiet-hour deferrals


def _fresh_directory(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def demo_settings(base: Settings, workdir: Path, smtp: SmtpSink, twilio: FakeTwilio) -> Settings:
    """The user's settings on the embedded default: bundled broker, a fresh SQLite file, local sinks."""
    channels = base.channels.model_copy(
        update={
            "outbox_dir": workdir / "outbox",
            "transport": "providers",
            "email": base.channels.email.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port}),
            "sms": base.channels.sms.model_copy(
                update={
                    "account_sid": twilio.account_sid,
                    "auth_token": twilio.auth_token,
                    "sender": base.channels.sms.sender or "+15005550006",
                    "api_base_url": twilio.url,
                }
            ),
        }
    )
    port = free_port()  # links in the demo's messages work while it runs
    return base.model_copy(
        update={
            "http": base.http.model_copy(update={"port": port, "public_url": f"http://127.0.0.1:{port}"}),
            "kafka": base.kafka.model_copy(update={"bootstrap_servers": "embedded"}),
            "database": base.database.model_copy(update={"url": f"sqlite+aiosqlite:///{workdir / 'demo.db'}"}),
            "channels": channels,
            # The demo signs its links with a throwaway secret; `recovery run` refuses to start without one.
            "security": base.security.model_copy(
                update={"link_secret": base.security.link_secret or secrets.token_urlsafe(32)}
            ),
        }
    )


async def run_demo(base: Settings, *, carts: int, workdir: Path, console: Console) -> Summary:
    """Start local SMTP and SMS sinks and the service, replay events, let virtual time run, report."""
    await asyncio.to_thread(_fresh_directory, workdir)
    with SmtpSink() as smtp, FakeTwilio() as twilio:
        summary = await _run(base, carts=carts, workdir=workdir, console=console, smtp=smtp, twilio=twilio)
        console.print(
            f"Local sinks received {len(smtp.received)} emails (SMTP {smtp.host}:{smtp.port}) and "
            f"{len(twilio.messages)} SMS (Twilio-compatible API {twilio.url})."
        )
        if smtp.received:
            sample = workdir / "sample-email.eml"
            await asyncio.to_thread(sample.write_bytes, smtp.received[0].raw)
            console.print(f"One of them, as delivered: {sample}")
    return summary


async def _run(
    base: Settings, *, carts: int, workdir: Path, console: Console, smtp: SmtpSink, twilio: FakeTwilio
) -> Summary:
    settings = demo_settings(base, workdir, smtp, twilio)
    clock = AcceleratedClock(speed=VIRTUAL_SPEED)
    service = Service(settings, channels=build_channels(settings), composer=build_composer(settings), clock=clock)
    stop, started = asyncio.Event(), asyncio.Event()
    console.print(
        f"[bold]cart-recovery demo[/]: bundled Kafka broker + SQLite, virtual time x{VIRTUAL_SPEED:.0f}, "
        "local SMTP and SMS sinks"
    )
    running = asyncio.create_task(service.run(stop, started=started))
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([running, waiter], return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        waiter.cancel()
        await running  # raises the start-up error
    sample = resources.files("recovery.demo_data").joinpath("sample_events.jsonl").read_bytes().splitlines()
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
    finally:
        await engine.dispose()
    print_summary(console, summary, service)
    return summary


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
    """Let virtual time run until every timer and step has played out (or the span is over)."""
    assert service.engine is not None
    start = clock.now()
    span = VIRTUAL_SPAN.total_seconds()
    with _progress(console) as progress:
        task = progress.add_task("virtual hours elapsed", total=int(span // 3600))
        while True:
            elapsed = (clock.now() - start).total_seconds()
            progress.update(task, completed=min(int(elapsed // 3600), int(span // 3600)))
            summary = await read_summary(service.engine)
            if elapsed >= span or (elapsed > 3 * 3600 and summary.pending_steps == 0 and summary.idle_timers == 0):
                break
            await asyncio.sleep(0.25)
    await asyncio.sleep(0.5)  # let the outbox relay publish the last events


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
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
