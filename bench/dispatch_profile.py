"""Where a dispatching service's CPU goes, per SMS: a py-spy raw profile summed by component.

Record one with ``BENCH_SPY_ALL=1 python -m bench.dispatch --profile FILE.txt`` (every thread on a CPU, no
``--gil``, no ``--idle``, no ``--native``: at 100 Hz one sample is 10 ms of one thread's CPU), then

    python -m bench.dispatch_profile FILE.txt [--count 1000] [--rate 100]

Each sample goes to the first activity whose frame is on its stack (the table's order), and, apart, to every
library it passes through (SQLAlchemy + asyncpg, logging, metrics/tracing, the Twilio client, aiohttp).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

# (activity, a frame on the stack says so): first match wins, so the narrower ones come first.
ACTIVITIES = (
    ("render thread (compose)", ("recovery/render/offload.py",)),
    ("outbox relay", ("recovery/ingest/relay.py",)),
    ("ingest (consumer + batch)", ("recovery/ingest/", "faststream/", "aiokafka/")),
    ("fire: load + decide + sending (prepare)", ("_prepare (recovery/steps/",)),
    ("fire: record outcomes", ("_record", "_sent (recovery/steps/dispatch.py")),
    ("fire: send (channel, Twilio client)", ("send (recovery/steps/dispatch", "_send (recovery/steps/dispatch")),
    ("scheduler claims and hand-out", ("recovery/steps/scheduler.py",)),
    ("HTTP server, health, sampler", ("uvicorn/", "recovery/api/", "recovery/ops/sampler")),
)
# Stacks that name no activity, by their outermost frame: SQLAlchemy's sync side runs in greenlets whose
# stacks do not show the asyncio caller; the loop's own work sits under ``asyncio.run``.
ROOTS = (
    ("SQLAlchemy + asyncpg, greenlet side (caller not on the stack)", ("sqlalchemy/", "asyncpg/", "greenlet")),
    ("executor threads waiting (sampled as active)", ("threading.py",)),
    ("event loop itself (select, callbacks, task steps)", ("runpy", "recovery/cli/main.py")),
)
LIBRARIES = (
    ("SQLAlchemy + asyncpg", ("sqlalchemy/", "asyncpg/")),
    ("logging (stdlib + structlog)", ("logging/__init__.py", "structlog/")),
    ("metrics + tracing", ("prometheus_client/", "opentelemetry/", "recovery/ops/")),
    ("twilio client", ("twilio/",)),
    ("aiohttp", ("aiohttp/",)),
)


def classify(stack: str, table: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    """The first entry of ``table`` one of whose markers is in ``stack``."""
    return next((name for name, marks in table if any(mark in stack for mark in marks)), None)


def summarize(lines: list[str]) -> tuple[Counter[str], Counter[str], int]:
    """Samples per activity and per library, and the total."""
    activities: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        root = stack.split(";", 1)[0]
        activity = classify(stack, ACTIVITIES) or classify(root, ROOTS) or "no Python frame (GC, native) or other"
        activities[activity] += count
        for name, marks in LIBRARIES:
            if any(mark in stack for mark in marks):
                libraries[name] += count
    return activities, libraries, total


def main() -> None:
    """Print ms of CPU per SMS by activity and by library."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--count", type=int, default=1000, help="SMS in the profiled burst")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    args = parser.parse_args()
    activities, libraries, total = summarize(args.profile.read_text(encoding="utf-8").splitlines())
    per_sms = 1000 / args.rate / args.count
    print(f"{total} samples = {total * per_sms:.2f} ms of CPU per SMS")
    for title, counts in (("activity", activities), ("library (inclusive, overlaps)", libraries)):
        print(f"| {title} | ms per SMS | share |\n|---|---|---|")
        for name, samples in counts.most_common():
            print(f"| {name} | {samples * per_sms:.2f} | {samples / max(total, 1):.0%} |")


if __name__ == "__main__":
    main()
