"""Latency: payment.failed published -> SMS accepted by the provider, p50/p99 at low load right after a burst.

As users run it: ``recovery run`` in its own process (``RECOVERY_*`` only, PostgreSQL, real ``twilio`` client to
a Twilio-shaped server answering in --latency-ms; bench/dispatch_service.py). A burst of --burst payment failures
is sent out first; then events are published one at a time, --interval-ms apart, each to its own phone number,
and a watcher polls the server every 2 ms for that number. Baseline: one direct HTTP POST to the same server
(the provider's own answer time), so the ratio is how many provider round-trips the service adds.

    python -m bench.latency [--count 30] [--interval-ms 300] [--latency-ms 100] [--burst 500]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import DEFAULT_PG, Row, percentile, postgres_database, print_rows
from bench.dispatch import basic_auth, burst
from bench.dispatch_service import CountingTwilio, Deployment, flows, running, warm_up
from bench.events import payment_failed, phone, publish
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer

_FIRST = 50_000_000  # phone indexes of the timed events, apart from the burst's


async def provider_round_trip(twilio: FakeTwilio, samples: int = 10) -> float:
    """Median seconds of one direct create-message POST."""
    url = f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    times = []
    async with aiohttp.ClientSession() as session:
        for index in range(samples):
            started = time.perf_counter()
            form = {"To": phone(90_000_000 + index), "From": "+15005550006", "Body": "x"}
            async with session.post(url, data=form, headers=basic_auth(twilio)) as response:
                response.raise_for_status()
            times.append(time.perf_counter() - started)
    return percentile(times, 0.5)


async def watch(twilio: FakeTwilio, arrivals: dict[str, float], stop: asyncio.Event) -> None:
    """Record when each phone number's first message is accepted."""
    seen = 0
    while not stop.is_set():
        now = time.perf_counter()
        found = twilio.messages
        for sms in found[seen:]:
            arrivals.setdefault(sms.to, now)
        seen = len(found)
        await asyncio.sleep(0.002)


async def timed(deployment: Deployment, twilio: FakeTwilio, count: int, interval_s: float) -> list[float]:
    """Seconds from publish to provider acceptance for each of ``count`` payment failures, one at a time."""
    published: dict[str, float] = {}
    arrivals: dict[str, float] = {}
    producer = Producer(deployment.kafka.bootstrap_servers)
    await producer.start()
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(twilio, arrivals, stop))
    try:
        for index in range(_FIRST, _FIRST + count):
            published[phone(index)] = time.perf_counter()
            await publish(producer, deployment.kafka.topics, [payment_failed(index)])
            await asyncio.sleep(interval_s)
        deadline = time.monotonic() + 60
        while len(published.keys() & arrivals.keys()) < count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await watcher
        await producer.stop()
    missing = published.keys() - arrivals.keys()
    if missing:
        raise TimeoutError(f"only {count - len(missing)} of {count} SMS arrived")
    return [arrivals[number] - started for number, started in published.items()]


async def service_latencies(
    bootstrap: str, pg_admin: str, twilio: CountingTwilio, count: int, interval_s: float, burst_size: int, workdir: Path
) -> list[float]:
    """A burst of ``burst_size`` sent out, then ``count`` events timed one by one."""
    async with postgres_database(pg_admin) as url:
        deployment = Deployment(bootstrap, url, twilio, workdir, flows(0))
        async with running(deployment):
            await warm_up(deployment, twilio)
            if burst_size:
                await burst(twilio, deployment, burst_size)
            return await timed(deployment, twilio, count, interval_s)


async def run(
    bootstrap: str, pg_admin: str, count: int, interval_ms: int, latency_ms: int, burst_size: int = 500
) -> list[Row]:
    """The latency rows (p50 and p99)."""
    with CountingTwilio() as twilio, tempfile.TemporaryDirectory() as tmp:
        twilio.response_delay_s = latency_ms / 1000
        base = await provider_round_trip(twilio)
        twilio.reset()
        twilio.response_delay_s = latency_ms / 1000
        times = await service_latencies(bootstrap, pg_admin, twilio, count, interval_ms / 1000, burst_size, Path(tmp))
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    label = (
        f"payment.failed -> SMS accepted, `recovery run` process, after a burst of {burst_size}, "
        f"{count} events {interval_ms} ms apart, Twilio {latency_ms} ms"
    )
    baseline = f"{base * 1000:,.0f} ms (direct POST)"
    return [
        Row(f"{label}: p50", baseline, f"{p50 * 1000:,.0f} ms", f"{p50 / base:.1f}x", "(p99 target only)"),
        Row(f"{label}: p99", baseline, f"{p99 * 1000:,.0f} ms", f"{p99 / base:.1f}x", "< 1 s (goal < 500 ms)"),
    ]


def main() -> None:
    """Run the latency bench alone on its own bundled broker."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--interval-ms", type=int, default=300)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()

    async def go() -> None:
        with EmbeddedBroker() as broker:
            rows = await run(
                broker.bootstrap_servers, args.postgres_url, args.count, args.interval_ms, args.latency_ms, args.burst
            )
            print_rows(rows)

    asyncio.run(go())


if __name__ == "__main__":
    main()
