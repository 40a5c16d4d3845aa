"""`make bench`: every bench in one invocation on one bundled broker, then one table.

Quick default sizes finish in a few minutes on a 2-core machine; ``--full`` uses the issue's sizes
(100 k events, 3 000 due SMS, 1 M pending timers, 1 M carts), which takes much longer.

    python -m bench.run_all [--full] [--only ingest,dispatch,latency,timers,timer_queries,memory] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime

from bench import dispatch, ingest, latency, timer_queries, timers
from bench.common import DEFAULT_PG, Row, print_rows
from recovery.ingest.embedded_broker import EmbeddedBroker

QUICK = {
    "events": 30_000,
    "carts": 6_000,
    "due": 1_000,
    "latency_count": 30,
    "latency_burst": 500,
    "scale": 0.01,
    "memory_carts": 50_000,
    "pending": 100_000,
}
FULL = {
    "events": 100_000,
    "carts": 20_000,
    "due": 3_000,
    "latency_count": 100,
    "latency_burst": 3_000,
    "scale": 1.0,
    "memory_carts": 1_000_000,
    "pending": 1_000_000,
}
BENCHES = ("ingest", "dispatch", "latency", "timers", "timer_queries", "memory")


def machine() -> str:
    """CPU count, model and load, so a reader can tell a shared machine."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, load avg {load}"


async def fresh_memory(pg: str, carts: int) -> list[Row]:
    """The memory bench in its own process: this one still holds what the other benches allocated."""
    command = [sys.executable, "-m", "bench.memory", "--json", "--carts", str(carts), "--postgres-url", pg]
    child = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"bench.memory exited with {child.returncode}")
    return [Row(**row) for row in json.loads(out.decode().strip().splitlines()[-1])]


async def collect(args: argparse.Namespace, sizes: dict[str, float]) -> list[Row]:
    """Run the chosen benches one after another; a failing bench becomes a row saying so."""
    chosen = [name for name in args.only.split(",") if name]
    rows: list[Row] = []
    with EmbeddedBroker() as broker:
        bootstrap, pg = broker.bootstrap_servers, args.postgres_url
        runs = {
            "ingest": lambda: ingest.run(bootstrap, pg, int(sizes["events"]), int(sizes["carts"])),
            "dispatch": lambda: dispatch.run(bootstrap, pg, int(sizes["due"]), args.latency_ms),
            "latency": lambda: latency.run(
                bootstrap, pg, int(sizes["latency_count"]), 300, args.latency_ms, int(sizes["latency_burst"])
            ),
            "timers": lambda: timers.run(bootstrap, pg, sizes["scale"], args.latency_ms),
            "timer_queries": lambda: timer_queries.measure_rows(pg, [10_000, int(sizes["pending"])]),
            "memory": lambda: fresh_memory(pg, int(sizes["memory_carts"])),
        }
        for name in chosen:
            started = time.monotonic()
            try:
                found = await runs[name]()
            except Exception as exc:  # one broken bench must not hide the others' figures
                found = [Row(f"{name}: FAILED", "-", f"{type(exc).__name__}: {exc}"[:80], "-", "-")]
            rows.extend(found)
            print(f"[{name} done in {time.monotonic() - started:.0f} s]", flush=True)
            print_rows(found)
    return rows


def main() -> None:
    """Parse options, run, print the one table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes (long)")
    parser.add_argument("--only", default=",".join(BENCHES))
    parser.add_argument("--latency-ms", type=int, default=100, help="the fake provider's answer time")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()
    sizes = FULL if args.full else QUICK
    head = (
        f"machine: {machine()}\ndate: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, sizes: {'full' if args.full else 'quick'}"
    )
    print(head, flush=True)
    rows = asyncio.run(collect(args, sizes))
    print("\n" + head + f"\nload avg at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print_rows(rows)


if __name__ == "__main__":
    main()
