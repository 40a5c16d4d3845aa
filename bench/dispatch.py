"""Dispatch: due payment-failure SMS sent per second on PostgreSQL, provider answering in --latency-ms.

Baseline: the same number of messages POSTed straight to the same Twilio-compatible server by 64 concurrent
aiohttp senders (what the provider allows). Service: ``count`` payment.failed events are ingested with the SMS
step due a few seconds later, so they all come due together; rate = messages / (last accepted - first).

    python -m bench.dispatch [--count 1000] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import DEFAULT_PG, Row, postgres_database, print_rows, running, settings_for, wait_for
from bench.events import payment_failed, phone, publish
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer, ensure_topics

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


def flows(after_s: int) -> str:
    """One payment-failure flow whose SMS comes due ``after_s`` seconds after the event."""
    return (
        "flows:\n  - name: payment_failed\n    trigger: payment.failed\n    steps:\n"
        f"      - {{name: retry_payment, after: {after_s}s, channel: sms, template: payment_failed}}\n"
    )


async def service_rate(bootstrap: str, pg_admin: str, twilio: FakeTwilio, count: int, workdir: Path) -> float:
    """Due SMS accepted by the provider per second, first to last, service on PostgreSQL."""
    after_s = max(15, count // 200)  # every step is stored before the first comes due
    async with postgres_database(pg_admin) as url:
        settings = settings_for(bootstrap, url, workdir, flows(after_s), twilio=twilio)
        await ensure_topics(bootstrap, settings.kafka)
        async with running(settings):
            producer = Producer(bootstrap)
            await producer.start()
            try:
                await publish(producer, settings.kafka.topics, [payment_failed(i) for i in range(count)])
            finally:
                await producer.stop()
            first = await wait_for(lambda: twilio.create_attempts >= 1, within=after_s + 120, poll=0.01)
            last = await wait_for(lambda: len(twilio.messages) >= count, within=600, poll=0.02)
    return (count - 1) / max(last - first, 1e-6)


async def run(bootstrap: str, pg_admin: str, count: int, latency_ms: int) -> list[Row]:
    """The dispatch row."""
    with FakeTwilio() as twilio, tempfile.TemporaryDirectory() as tmp:
        twilio.response_delay_s = latency_ms / 1000
        raw = await raw_rate(twilio, count)
        twilio.reset()
        twilio.response_delay_s = latency_ms / 1000
        rate = await service_rate(bootstrap, pg_admin, twilio, count, Path(tmp))
    return [
        Row(
            f"due SMS sent/s, PostgreSQL, provider {latency_ms} ms, {count} due at once",
            f"{raw:,.0f}/s (64 raw HTTP senders)",
            f"{rate:,.0f}/s",
            f"{rate / raw:.2f}x",
            ">= 250/s (goal 1 000/s)",
        )
    ]


def main() -> None:
    """Run the dispatch bench alone on its own bundled broker."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()

    async def go() -> None:
        with EmbeddedBroker() as broker:
            print_rows(await run(broker.bootstrap_servers, args.postgres_url, args.count, args.latency_ms))

    asyncio.run(go())


if __name__ == "__main__":
    main()
