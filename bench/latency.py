"""Latency: payment.failed published -> SMS accepted by the provider, p50/p99 at low load (PostgreSQL).

Events are published one at a time, --interval-ms apart, each to its own phone number; a watcher polls the
Twilio-compatible server every 2 ms for that number. Baseline: one direct HTTP POST to the same server (the
provider's own answer time, --latency-ms), so the ratio is how many provider round-trips the service adds.

    python -m bench.latency [--count 30] [--interval-ms 300] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import DEFAULT_PG, Row, percentile, postgres_database, print_rows, running, settings_for
from bench.dispatch import basic_auth, flows
from bench.events import payment_failed, phone, publish
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer, ensure_topics


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
    while not stop.is_set():
        now = time.perf_counter()
        for sms in twilio.messages:
            arrivals.setdefault(sms.to, now)
        await asyncio.sleep(0.002)


async def service_latencies(
    bootstrap: str, pg_admin: str, twilio: FakeTwilio, count: int, interval_s: float, workdir: Path
) -> list[float]:
    """Seconds from publish to provider acceptance for each of ``count`` payment failures."""
    published: dict[str, float] = {}
    arrivals: dict[str, float] = {}
    async with postgres_database(pg_admin) as url:
        settings = settings_for(bootstrap, url, workdir, flows(0), twilio=twilio)
        await ensure_topics(bootstrap, settings.kafka)
        async with running(settings):
            producer = Producer(bootstrap)
            await producer.start()
            stop = asyncio.Event()
            watcher = asyncio.create_task(watch(twilio, arrivals, stop))
            try:
                for index in range(count):
                    published[phone(index)] = time.perf_counter()
                    await publish(producer, settings.kafka.topics, [payment_failed(index)])
                    await asyncio.sleep(interval_s)
                deadline = time.monotonic() + 60
                while len(arrivals) < count and time.monotonic() < deadline:  # noqa: ASYNC110 - watcher fills it
                    await asyncio.sleep(0.05)
            finally:
                stop.set()
                await watcher
                await producer.stop()
    if len(arrivals) < count:
        raise TimeoutError(f"only {len(arrivals)} of {count} SMS arrived")
    return [arrivals[number] - started for number, started in published.items()]


async def run(bootstrap: str, pg_admin: str, count: int, interval_ms: int, latency_ms: int) -> list[Row]:
    """The latency rows (p50 and p99)."""
    with FakeTwilio() as twilio, tempfile.TemporaryDirectory() as tmp:
        twilio.response_delay_s = latency_ms / 1000
        base = await provider_round_trip(twilio)
        twilio.reset()
        twilio.response_delay_s = latency_ms / 1000
        times = await service_latencies(bootstrap, pg_admin, twilio, count, interval_ms / 1000, Path(tmp))
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    label = f"payment.failed -> SMS accepted, {count} events {interval_ms} ms apart, provider {latency_ms} ms"
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
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()

    async def go() -> None:
        with EmbeddedBroker() as broker:
            rows = await run(broker.bootstrap_servers, args.postgres_url, args.count, args.interval_ms, args.latency_ms)
            print_rows(rows)

    asyncio.run(go())


if __name__ == "__main__":
    main()
