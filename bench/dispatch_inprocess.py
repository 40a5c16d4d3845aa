"""Issue 13's dispatch bench, kept to explain issue 25's gap: the service in this process, CPU per SMS.

The service runs in the bench's own process (``bench.common.running``: ``Service`` built from ``Settings``,
no CLI, so no logging configuration unless ``--log`` and no tracing set-up), SMS through the real ``twilio``
client to ``FakeTwilio`` in a thread of this process. CPU per SMS is this process's CPU minus the
``FakeTwilio`` thread's (``/proc/self/task``), over two windows: publish -> last SMS accepted (ingest +
dispatch) and first SMS request -> last accepted (dispatch; ingest is over by then when ``--due-after`` > 0).

    python -m bench.dispatch_inprocess [--count 1000] [--due-after 15] [--log info] [--profile FILE.prof]

``--due-after 0``: the SMS is due at once, so ingest and dispatch overlap, as in ``bench.dispatch``.
``--profile``: cProfile of the loop thread over the dispatch window (pstats file).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import tempfile
import threading
from pathlib import Path

from bench.common import DEFAULT_PG, postgres_database, running, settings_for, wait_for
from bench.dispatch_service import flows
from bench.events import payment_failed, publish
from recovery.cli.log_setup import configure_logging
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import Producer, ensure_topics


def _ticks(path: str) -> int:
    fields = Path(path).read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_without(thread: threading.Thread | None) -> float:
    """This process's user + system CPU seconds, less ``thread``'s (the fake provider is not the service)."""
    total = _ticks("/proc/self/stat")
    if thread is not None and thread.native_id is not None:
        total -= _ticks(f"/proc/self/task/{thread.native_id}/stat")
    return total / os.sysconf("SC_CLK_TCK")


async def measure(args: argparse.Namespace, bootstrap: str, twilio: FakeTwilio, workdir: Path) -> None:
    """Warm up, then one burst; prints rate and CPU per SMS over both windows."""
    provider = twilio._thread  # the bench reads its own fake's thread
    async with postgres_database(args.postgres_url) as url:
        settings = settings_for(bootstrap, url, workdir, flows(args.due_after), twilio=twilio)
        await ensure_topics(bootstrap, settings.kafka)
        async with running(settings):
            producer = Producer(bootstrap)
            await producer.start()
            try:
                warm = [payment_failed(90_000_000 + i) for i in range(16)]
                await publish(producer, settings.kafka.topics, warm)
                await wait_for(lambda: len(twilio.messages) >= 16, within=120 + args.due_after, poll=0.05)
                await asyncio.sleep(1.0)
                delay = twilio.response_delay_s
                twilio.reset()
                twilio.response_delay_s = delay
                cpu_start = cpu_without(provider)
                await publish(producer, settings.kafka.topics, [payment_failed(i) for i in range(args.count)])
            finally:
                await producer.stop()
            within = args.due_after + 120 + args.count / 5
            first = await wait_for(lambda: twilio.create_attempts >= 1, within=within, poll=0.002)
            cpu_first = cpu_without(provider)
            profiler = cProfile.Profile() if args.profile else None
            if profiler is not None:
                profiler.enable()
            last = await wait_for(lambda: len(twilio.messages) >= args.count, within=within, poll=0.01)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
            cpu_last = cpu_without(provider)
    n = args.count
    print(f"in-process burst of {n}, due after {args.due_after}s: {(n - 1) / max(last - first, 1e-6):,.0f} SMS/s")
    print(f"  CPU per SMS, publish -> last accepted: {(cpu_last - cpu_start) * 1000 / n:.2f} ms")
    print(f"  CPU per SMS, first request -> last accepted: {(cpu_last - cpu_first) * 1000 / n:.2f} ms")
    print(f"  load average: {os.getloadavg()}")


def main() -> None:
    """Run the in-process dispatch bench on its own bundled broker."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--due-after", type=int, default=15, help="seconds from event to due SMS (0: at once)")
    parser.add_argument("--log", help="configure logging as `recovery run` does at this level (JSON to a file)")
    parser.add_argument("--profile", type=Path, help="cProfile of the dispatch window to this pstats file")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()

    async def go(tmp: Path) -> None:
        with EmbeddedBroker() as broker, FakeTwilio() as twilio:
            twilio.response_delay_s = args.latency_ms / 1000
            await measure(args, broker.bootstrap_servers, twilio, tmp)

    with tempfile.TemporaryDirectory() as tmp, (Path(tmp) / "service.log").open("w", encoding="utf-8") as sink:
        if args.log:
            configure_logging(args.log, "json", sink)
        asyncio.run(go(Path(tmp)))


if __name__ == "__main__":
    main()
