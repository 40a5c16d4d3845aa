"""CPU per ingested event, in process: the issue's mix through ``BatchProcessor`` with no broker, under cProfile.

Builds the mix (``bench.ingest_mix.make_mix``), cuts it into batches of ``kafka.batch_size`` records as the
subscriber hands them over, and runs ``BatchProcessor.process`` on each against a fresh PostgreSQL database and
a fresh SQLite file. Prints wall and CPU µs per event (the process's CPU: on SQLite aiosqlite's thread counts too)
and the top functions by cumulative and own time. This isolates the service's per-event work from Kafka and
from the noise of a shared machine (CPU time, not wall time, is the figure to compare).

    python -m bench.ingest_profile [--events 30000] [--only postgres|sqlite] [--no-profile] [--top 30] [--output PREFIX]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka.structs import ConsumerRecord

from bench.common import DEFAULT_PG, postgres_database
from bench.ingest_mix import ROLES, make_mix
from recovery.app.components import build_processor
from recovery.clock import SystemClock
from recovery.rules import load_flows
from recovery.rules.live_flows import LiveFlows
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head

FLOWS = Path(__file__).resolve().parent.parent / "config" / "flows.yaml"


class NoDeadLetters:
    """The mix has no bad input; count what would be published anyway."""

    def __init__(self) -> None:
        self.sent = 0

    async def send_many(self, topic: str, messages: Sequence[tuple[str | None, bytes]]) -> None:
        self.sent += len(messages)


def records(count: int) -> list[ConsumerRecord[bytes, bytes]]:
    """The mix as records: each type on its topic, partitioned by cart as the producer would."""
    mix = make_mix(count, max(1, count // 5))
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for event in mix:
        partition = hash(event.key) % 4
        offset = offsets.get((event.role, partition), 0)
        offsets[(event.role, partition)] = offset + 1
        key = event.key.encode()
        # aiokafka's own record type, as the subscriber hands the batch over
        out.append(
            ConsumerRecord(
                f"p.{event.role}", partition, offset, 0, 0, key, event.raw, None, len(key), len(event.raw), []
            )
        )
    return out


async def run(
    url: str, batches: list[list[ConsumerRecord[bytes, bytes]]], profile: cProfile.Profile | None
) -> tuple[float, float]:
    """Wall and CPU seconds to process every batch (schema created before the clock starts)."""
    settings = Settings(
        kafka={"topics": {role: {"name": f"p.{role}"} for role in ROLES}, "partitions": 4},
        database={"url": url},
        flows_file=FLOWS,
        security={"link_secret": "profile-link-secret-of-32-characters-at-least"},
    )
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
        processor = build_processor(
            settings,
            engine=engine,
            flows=LiveFlows(load_flows(FLOWS)),
            clock=SystemClock(),
            dead_letters=NoDeadLetters(),
        )
        await processor.process(batches[0][:1])  # warm the connection and the statement caches
        wall, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        for batch in batches:
            await processor.process(batch)
        if profile is not None:
            profile.disable()
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await engine.dispose()


def report(name: str, events: int, wall: float, cpu: float, profile: cProfile.Profile | None, options: Any) -> None:
    print(f"{name}: {events} events, wall {wall * 1e6 / events:.0f} µs/event, CPU {cpu * 1e6 / events:.0f} µs/event")
    if profile is None:
        return
    if options.output:
        profile.dump_stats(f"{options.output}.{name.lower()}.prof")
    top = options.top
    for order in ("cumulative", "tottime"):
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text)
        stats.sort_stats(order).print_stats(top)
        print(f"--- {name}, by {order}")
        print(text.getvalue().split("\n", 6)[-1] if order == "cumulative" else text.getvalue())


async def main(options: argparse.Namespace) -> None:
    every = records(options.events)
    batches = [every[start : start + options.batch] for start in range(0, len(every), options.batch)]
    if options.only in (None, "postgres"):
        async with postgres_database(options.postgres_url) as url:
            profile = None if options.no_profile else cProfile.Profile()
            wall, cpu = await run(url, batches, profile)
            report("PostgreSQL", len(every), wall, cpu, profile, options)
    if options.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            profile = None if options.no_profile else cProfile.Profile()
            wall, cpu = await run(f"sqlite+aiosqlite:///{tmp}/profile.db", batches, profile)
            report("SQLite", len(every), wall, cpu, profile, options)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=2000, help="records per batch (kafka.batch_size)")
    parser.add_argument("--only", choices=("postgres", "sqlite"))
    parser.add_argument("--no-profile", action="store_true", help="timings without cProfile's overhead")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--output", help="also save each profile as OUTPUT.postgresql.prof / OUTPUT.sqlite.prof")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    asyncio.run(main(parser.parse_args()))
