"""Dispatch as users run it: a burst of payment failures leaves as SMS, ``recovery run`` in its own process.

The service is configured by ``RECOVERY_*`` only, on PostgreSQL, SMS through the real ``twilio`` client to a
Twilio-shaped server answering in --latency-ms (bench/dispatch_service.py). ``count`` payment.failed events whose
SMS step is due at once are published while the service runs, so ingest and dispatch overlap (a payment
provider's outage ending); rate = SMS accepted, first to last. Baseline, same run: 64 plain aiohttp senders to
the same endpoint. Then two replicas (two processes, one group, one database) on a fresh burst: ratio to one.

    python -m bench.dispatch [--count 1000] [--latency-ms 100] [--replicas 1,2]

One burst, one process, no baseline, CPU per SMS in two windows (publish -> last, first request -> last):

    python -m bench.dispatch --single [--due-after 15] [--log-level warning] [--keep-logs DIR]
    BENCH_SPY_ALL=1 python -m bench.dispatch --profile FILE.txt   # then python -m bench.dispatch_profile FILE.txt
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.common import DEFAULT_PG, Row, postgres_database, print_rows, wait_for
from bench.dispatch_service import CountingTwilio, Deployment, cpu_seconds, flows, pg_transactions, running, warm_up
from bench.events import payment_failed, phone, publish
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer
from tests.process import ServiceProcess

SENDERS = 64


def basic_auth(twilio: FakeTwilio) -> dict[str, str]:
    """The Authorization header the provider expects."""
    token = base64.b64encode(f"{twilio.account_sid}:{twilio.auth_token}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def raw_rate(twilio: FakeTwilio, count: int) -> float:
    """Messages/s with 64 concurrent plain HTTP senders against the fake provider."""
    url = f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    auth = basic_auth(twilio)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def sender(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            form = {"To": phone(index), "From": "+15005550006", "Body": "Votre paiement a échoué"}
            async with session.post(url, data=form, headers=auth) as response:
                response.raise_for_status()

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(sender(session) for _ in range(SENDERS)))
    return count / (time.perf_counter() - started)


@dataclass(frozen=True)
class Burst:
    """What one burst measured at the provider."""

    rate: float  # SMS accepted per second, first to last
    max_in_flight: int
    avg_in_flight: float
    seconds: float
    cpu_ms: float  # the service processes' CPU per SMS, publish to last accepted
    cpu_dispatch_ms: float  # ... first request to last accepted (dispatch only when the SMS is due later)
    commits: float = float("nan")  # PostgreSQL transactions committed per SMS (ingest + dispatch)
    rollbacks: float = float("nan")  # ... and rolled back (pre-pings)
    idle_cpu: float = float("nan")  # the services' CPU seconds per second while idle before the burst


async def burst(
    twilio: CountingTwilio,
    deployment: Deployment,
    count: int,
    services: Sequence[ServiceProcess] = (),
    profile: Path | None = None,
) -> Burst:
    """Publish ``count`` payment failures at once and time their SMS at the provider, first to last; with
    ``profile``, the first service runs under py-spy from publish to the last SMS accepted."""
    producer = Producer(deployment.kafka.bootstrap_servers)
    await producer.start()
    twilio.reset_gauge()
    cpu_idle = cpu_seconds(services)
    await asyncio.sleep(11)  # the warm-up's transactions reported by the now idle backends
    xacts_before = await pg_transactions(deployment.database_url)
    spy = contextlib.AsyncExitStack()
    if profile is not None:
        await spy.enter_async_context(sampled(services[0], profile))
    cpu_before = cpu_seconds(services)
    cpu_idle = (cpu_before - cpu_idle) / 11
    try:
        events = [payment_failed(i) for i in range(count)]
        sending = asyncio.create_task(publish(producer, deployment.kafka.topics, events))
        within = 180 + count / 5
        first = await wait_for(lambda: twilio.create_attempts >= 1, within=within, poll=0.002)
        first_area = twilio.area()
        cpu_first = cpu_seconds(services)
        last = await wait_for(lambda: len(twilio.messages) >= count, within=within, poll=0.01)
        last_area = twilio.area()
        cpu = cpu_seconds(services) - cpu_before
        await spy.aclose()
        await sending
    finally:
        await spy.aclose()
        await producer.stop()
    await asyncio.sleep(11)
    commits, rollbacks = (
        after - before
        for after, before in zip(await pg_transactions(deployment.database_url), xacts_before, strict=True)
    )
    span = max(last - first, 1e-6)
    return Burst(
        (count - 1) / span,
        twilio.max_in_flight,
        (last_area - first_area) / span,
        span,
        cpu * 1000 / count,
        (cpu_before + cpu - cpu_first) * 1000 / count,
        commits / count,
        rollbacks / count,
        cpu_idle,
    )


async def service_burst(
    bootstrap: str,
    pg_admin: str,
    twilio: CountingTwilio,
    count: int,
    workdir: Path,
    replicas: int,
    profile: Path | None = None,
    *,
    due_after: int = 0,
    args: Sequence[str] = (),
) -> Burst:
    """One fresh database and topics, ``replicas`` processes ready and warm, then the burst.

    ``profile``: the (single) process runs under ``py-spy record`` (all threads, raw stacks) into that file.
    ``due_after``: seconds from event to due SMS (> 0: ingest is over before the first send); ``args``: added
    to ``recovery run``.
    """
    async with postgres_database(pg_admin) as url:
        deployment = Deployment(bootstrap, url, twilio, workdir, flows(due_after))
        async with running(deployment, replicas, args=args) as services:
            await warm_up(deployment, twilio)
            return await burst(twilio, deployment, count, services, profile)


@asynccontextmanager
async def sampled(service: ServiceProcess, out: Path) -> AsyncIterator[None]:
    """py-spy (on PATH) attached to the running service, raw stacks to ``out`` when it ends: samples of the
    threads holding the GIL, or with $BENCH_SPY_ALL set, of every thread on a CPU (no --idle, no --native)."""
    assert service._process is not None
    gil = [] if os.environ.get("BENCH_SPY_ALL") else ["--gil"]
    command = ["py-spy", "record", *gil, "--nonblocking", "-r", "100", "-f", "raw", "-o", str(out)]
    spy = await asyncio.create_subprocess_exec(*command, "--pid", str(service._process.pid))
    await asyncio.sleep(1.0)  # attached before the burst starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        await spy.wait()


async def run(
    bootstrap: str, pg_admin: str, count: int, latency_ms: int, replicas: tuple[int, ...] = (1, 2)
) -> list[Row]:
    """The dispatch rows: one process against 64 plain senders, then two replicas against one."""
    results: dict[int, Burst] = {}
    with CountingTwilio() as twilio, tempfile.TemporaryDirectory() as tmp:
        twilio.response_delay_s = latency_ms / 1000
        raw = await raw_rate(twilio, count)
        for n in replicas:
            twilio.reset()
            twilio.response_delay_s = latency_ms / 1000
            workdir = Path(tmp) / f"replicas-{n}"
            workdir.mkdir()
            results[n] = await service_burst(bootstrap, pg_admin, twilio, count, workdir, n)
    rows = []
    label = f"SMS/s from a burst of {count} payment.failed, `recovery run` process, PostgreSQL, Twilio {latency_ms} ms"
    if 1 in results:
        one = results[1]
        rows += [
            Row(
                f"{label}, 1 process",
                f"{raw:,.0f}/s (64 plain senders)",
                f"{one.rate:,.0f}/s",
                f"{one.rate / raw:.2f}x",
                ">= 250/s",
            ),
            Row(
                "  requests in flight at the provider during that burst",
                "64 (plain senders)",
                f"max {one.max_in_flight}, avg {one.avg_in_flight:.1f}",
                "-",
                "-",
            ),
            Row("  service CPU per SMS during that burst (ingest + dispatch)", "-", f"{one.cpu_ms:.2f} ms", "-", "-"),
            Row(
                "  PostgreSQL transactions per SMS (commits / rollbacks)",
                "-",
                f"{one.commits:.2f} / {one.rollbacks:.2f}",
                "-",
                "-",
            ),
        ]
    if 1 in results and 2 in results:
        two = results[2]
        rows += [
            Row(
                f"{label}, 2 processes",
                f"{results[1].rate:,.0f}/s (1 process)",
                f"{two.rate:,.0f}/s",
                f"{two.rate / results[1].rate:.2f}x",
                ">= 1.8x",
            ),
            Row(
                "  requests in flight at the provider, 2 processes",
                "-",
                f"max {two.max_in_flight}, avg {two.avg_in_flight:.1f}",
                "-",
                "-",
            ),
            Row("  service CPU per SMS, 2 processes together", "-", f"{two.cpu_ms:.2f} ms", "-", "-"),
            Row(
                "  PostgreSQL transactions per SMS, 2 processes (commits / rollbacks)",
                "-",
                f"{two.commits:.2f} / {two.rollbacks:.2f}",
                "-",
                "-",
            ),
        ]
    return rows


async def single(args: argparse.Namespace) -> None:
    """One burst, one process (under py-spy with ``--profile``); prints rate, CPU per SMS and load average."""
    profile = None if args.profile is None else args.profile.resolve()
    run_args = [] if args.log_level is None else ["--log-level", args.log_level]
    with EmbeddedBroker() as broker, CountingTwilio() as twilio, tempfile.TemporaryDirectory() as tmp:
        twilio.response_delay_s = args.latency_ms / 1000
        if args.keep_logs is not None:
            tmp = str(args.keep_logs.resolve())
            args.keep_logs.mkdir(parents=True, exist_ok=True)
        found = await service_burst(
            broker.bootstrap_servers,
            args.postgres_url,
            twilio,
            args.count,
            Path(tmp),
            1,
            profile=profile,
            due_after=args.due_after,
            args=run_args,
        )
    print(f"burst of {args.count}, due after {args.due_after}s, 1 process: {found.rate:,.0f} SMS/s")
    print(f"  in flight max {found.max_in_flight} avg {found.avg_in_flight:.1f}")
    print(f"  service CPU per SMS, publish -> last accepted: {found.cpu_ms:.2f} ms")
    print(f"  service CPU per SMS, first request -> last accepted: {found.cpu_dispatch_ms:.2f} ms")
    print(f"  idle CPU before the burst: {found.idle_cpu * 1000:.0f} ms per second")
    print(f"  transactions per SMS {found.commits:.2f} / {found.rollbacks:.2f}; load average {os.getloadavg()}")


def main() -> None:
    """Run the dispatch bench alone on its own bundled broker."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--replicas", default="1,2", help="comma-separated process counts to measure")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--profile", type=Path, help="one process under py-spy (on PATH): raw stacks to this file")
    parser.add_argument("--single", action="store_true", help="one burst, one process, no baseline: CPU per SMS")
    parser.add_argument("--due-after", type=int, default=0, help="--single: seconds from event to due SMS")
    parser.add_argument("--log-level", help="--single: `recovery run --log-level` (default: info)")
    parser.add_argument("--keep-logs", type=Path, help="--single: the service's log (and cwd) in this directory")
    args = parser.parse_args()
    replicas = tuple(int(n) for n in args.replicas.split(","))
    if args.profile is not None or args.single:
        asyncio.run(single(args))
        return

    async def go() -> None:
        with EmbeddedBroker() as broker:
            rows = await run(broker.bootstrap_servers, args.postgres_url, args.count, args.latency_ms, replicas)
            print_rows(rows)

    asyncio.run(go())


if __name__ == "__main__":
    main()
