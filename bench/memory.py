"""Memory: resident memory of the service process after 10 k and after --carts distinct carts (PostgreSQL).

`make bench` runs it in a fresh process so the other benches' memory does not count.

The service runs in this process (as in ``recovery run``); the events are generated and published by a child
process (chunks of 5 000), so the figures are the service's alone. Baseline: the resident memory once the
service has started, before any event. Figures are VmRSS from /proc after a garbage collection.

    python -m bench.memory [--carts 50000]   # the issue's size: --carts 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
from dataclasses import asdict
from functools import partial
from pathlib import Path

from bench.common import DEFAULT_PG, Row, postgres_database, print_rows, rss_mb, running, settings_for, wait_for
from bench.events import cart_updated, publish
from recovery.app.service import Service
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer, ensure_topics
from recovery.settings import TopicsSettings

FLOWS = """flows:
  - name: abandoned_cart
    trigger: cart.abandoned
    steps:
      - {name: reminder, after: 1h, channel: email, template: cart_reminder}
"""
CHUNK = 5000


def received_at_least(service: Service, goal: int) -> bool:
    """Whether the service has taken in ``goal`` events."""
    return service.stats.received >= goal


async def measure(bootstrap: str, pg_admin: str, carts: int, workdir: Path) -> dict[int, float]:
    """RSS in MB keyed by carts ingested (0 = started, idle)."""
    marks = sorted({0, min(10_000, carts), carts})
    found: dict[int, float] = {}
    async with postgres_database(pg_admin) as url:
        settings = settings_for(bootstrap, url, workdir, FLOWS)
        await ensure_topics(bootstrap, settings.kafka)
        async with running(settings) as service:
            done = 0
            for mark in marks:
                if mark > done:
                    await produce_elsewhere(bootstrap, settings.kafka.topics, done, mark)
                    done = mark
                await wait_for(partial(received_at_least, service, done), within=3600, poll=0.1)
                gc.collect()
                found[mark] = rss_mb()
    return found


async def produce_elsewhere(bootstrap: str, topics: TopicsSettings, start: int, stop: int) -> None:
    """Publish carts ``start``..``stop`` from a child process (its buffers must not count as the service's)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.memory", "--produce", bootstrap, topics.model_dump_json(), str(start), str(stop)
    )
    if await child.wait() != 0:
        raise RuntimeError(f"the producer process failed (exit {child.returncode})")


async def produce(bootstrap: str, topics: TopicsSettings, start: int, stop: int) -> None:
    """The child process: publish cart.updated events for carts ``start``..``stop`` in chunks."""
    producer = Producer(bootstrap)
    await producer.start()
    try:
        for offset in range(start, stop, CHUNK):
            await publish(producer, topics, [cart_updated(i) for i in range(offset, min(stop, offset + CHUNK))])
    finally:
        await producer.stop()


async def run(bootstrap: str, pg_admin: str, carts: int) -> list[Row]:
    """The memory rows."""
    with tempfile.TemporaryDirectory() as tmp:
        found = await measure(bootstrap, pg_admin, carts, Path(tmp))
    idle = found[0]
    return [
        Row(
            f"resident memory after {mark:,} carts (PostgreSQL)",
            f"{idle:.0f} MB (started, idle)",
            f"{value:.0f} MB",
            f"{value / idle:.2f}x",
            "flat, < 250 MB (goal < 150 MB)",
        )
        for mark, value in sorted(found.items())
        if mark
    ]


def main() -> None:
    """Run the memory bench alone on its own bundled broker."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--carts", type=int, default=50_000)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON (for bench.run_all)")
    parser.add_argument("--produce", nargs=4, metavar=("BOOTSTRAP", "TOPICS", "START", "STOP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        bootstrap, topics, start, stop = args.produce
        asyncio.run(produce(bootstrap, TopicsSettings.model_validate_json(topics), int(start), int(stop)))
        return

    async def go() -> None:
        with EmbeddedBroker() as broker:
            rows = await run(broker.bootstrap_servers, args.postgres_url, args.carts)
        if args.json:
            print(json.dumps([asdict(row) for row in rows]))
        else:
            print_rows(rows)

    asyncio.run(go())


if __name__ == "__main__":
    main()
