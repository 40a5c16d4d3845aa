"""Ingest throughput as users run it: ``recovery run --role consumer`` as its own process, on the bundled broker.

The issue's realistic mix (80 % cart.updated, 5 % payment.failed, 15 % order.completed over N/5 carts, each
type on its contract topic, 4 partitions) is published once; then, on the same events in the same run:
plain aiokafka, a no-op FastStream batch subscriber, PostgreSQL's and SQLite's own batched upserts
(``bench/ingest_baselines.py``), and the service, configured by ``RECOVERY_*`` only, into SQLite and into
PostgreSQL. The service's rate is events/s from the first to the last event recorded as processed.
PostgreSQL's own baseline runs twice, before the service and right after its PostgreSQL run, and the ratio is
to their mean: this machine's speed drifts by up to 2x within minutes (both values are printed).

    python -m bench.ingest [--events 100000] [--workers N] [--profile out.prof] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench import ingest_baselines as baselines
from bench.common import DEFAULT_PG, Row, machine_ticks, postgres_database, postgres_server_pid, print_rows, tree_cpu
from bench.ingest_mix import ROLES, MixEvent, make_mix, publish_mix
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.ingest.kafka import ensure_topics
from recovery.settings import Settings
from tests.process import ServiceProcess

INPUTS = ("cart", "payment", "order")
STORES = '{"default": {"name": "Maison Dupont", "address": "12 rue des Lilas, 75011 Paris, France"}}'


def service_env(bootstrap: str, topics: dict[str, str], database_url: str) -> dict[str, str]:
    """The whole configuration of the service under test, as a container gets it: ``RECOVERY_*`` only."""
    env = {
        "RECOVERY_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "RECOVERY_KAFKA__GROUP_ID": f"svc-{uuid.uuid4().hex[:8]}",
        "RECOVERY_DATABASE__URL": database_url,
        "RECOVERY_SECURITY__LINK_SECRET": "bench-link-secret-of-at-least-32-characters",
        "RECOVERY_HTTP__PORT": "0",
        "RECOVERY_STORES": STORES,
    }
    env.update({f"RECOVERY_KAFKA__TOPICS__{role.upper()}__NAME": name for role, name in topics.items()})
    return env


@dataclass(frozen=True)
class Measured:
    """One service run: events/s first to last, and CPU µs per event of the service and of the database server."""

    rate: float
    service_cpu: float
    database_cpu: float | None  # None: SQLite (in the service's process) or a server on another host
    machine_busy: float  # the share of all the machine's cores busy over the span (everything running on it)

    def cpu_text(self) -> str:
        database = "" if self.database_cpu is None else f", PostgreSQL {self.database_cpu:,.0f} µs"
        return f"{self.service_cpu:,.0f} µs CPU/event{database}; machine {self.machine_busy:.0%} busy"


async def _progress(
    count: Callable[[], Awaitable[int]], total: int, service: ServiceProcess, database_pid: int | None
) -> Measured:
    """Poll the processed-event count: events/s from the first to the last one recorded, and the CPU µs per event
    of the service (all its processes: on a shared machine the steadier figure) and of the database server over
    the same span."""
    deadline = time.monotonic() + 1800
    first_at, first, first_cpu, first_db, first_ticks = 0.0, 0, 0.0, 0.0, (0, 0)
    pid = service._process.pid if service._process else 0

    def database_cpu() -> float:
        return tree_cpu(database_pid, with_exited=True) if database_pid else 0.0

    while True:
        done = await count()
        now = time.perf_counter()
        if done and not first_at:
            first_at, first, first_cpu, first_db, first_ticks = (
                now,
                done,
                tree_cpu(pid),
                database_cpu(),
                machine_ticks(),
            )
        if done >= total:
            events = max(done - first, 1)
            busy, ticks = (now_ - then for now_, then in zip(machine_ticks(), first_ticks, strict=True))
            return Measured(
                rate=(done - first) / max(now - first_at, 1e-6),
                service_cpu=(tree_cpu(pid) - first_cpu) * 1e6 / events,
                database_cpu=(database_cpu() - first_db) * 1e6 / events if database_pid else None,
                machine_busy=busy / max(ticks, 1),
            )
        if not service.running:
            raise RuntimeError(f"the service exited with {service.returncode} before ingesting everything")
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done} of {total} events processed")
        await asyncio.sleep(0.05)


async def service_rate(
    bootstrap: str, topics: dict[str, str], database_url: str, total: int, options: argparse.Namespace
) -> Measured:
    """``recovery run --role consumer`` in its own process (cwd without a config file), measured."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--role", "consumer", "--log-level", "warning"]
        if options.workers:
            args += ["--workers", str(options.workers)]
        env = service_env(bootstrap, topics, database_url)
        service = ServiceProcess(None, Path(tmp) / "service.log", env=env, args=args)
        if options.profile and not options.profile.endswith(".txt"):  # cProfile, written at its clean exit
            service._argv[1:1] = ["-m", "cProfile", "-o", options.profile]
        previous = os.getcwd()
        os.chdir(tmp)  # no config/recovery.yaml here: only the environment counts
        try:
            service.start()
        finally:
            os.chdir(previous)
        spy = _py_spy(service, options.profile) if options.profile and options.profile.endswith(".txt") else None
        try:
            database_pid = None if database_url.startswith("sqlite") else await postgres_server_pid(database_url)
            async with _counter(database_url) as count:
                return await _progress(count, total, service, database_pid)
        except BaseException:
            sys.stderr.write((Path(tmp) / "service.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            service.stop(timeout=60)
            if spy is not None:
                spy.wait(timeout=60)  # it writes its file when the service has exited


def _py_spy(service: ServiceProcess, output: str) -> subprocess.Popen[bytes]:
    """py-spy (``pip install py-spy``) sampling the service, all threads, collapsed stacks into ``output``."""
    spy = Path(sys.executable).with_name("py-spy")
    pid = str(service._process.pid if service._process else 0)
    command = [
        str(spy),
        "record",
        "--subprocesses",
        "--nonblocking",
        "-r",
        "200",
        "-f",
        "raw",
        "-o",
        output,
        "--pid",
        pid,
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@asynccontextmanager
async def _counter(database_url: str) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """How many events the service has recorded as processed (0 before its schema exists). On PostgreSQL one
    connection for the whole run: a connection per poll would add its backends' CPU to the server's figure."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]

        async def count_sqlite() -> int:
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                    return int(db.execute("SELECT count(*) FROM processed_events").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

        yield count_sqlite
        return

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))

    async def count_postgres() -> int:
        try:
            return int(await conn.fetchval("SELECT count(*) FROM processed_events"))
        except asyncpg.UndefinedTableError:
            return 0

    try:
        yield count_postgres
    finally:
        await conn.close()


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x"


@dataclass(frozen=True)
class Figures:
    """Everything one ingest bench run measured."""

    what: str
    raw: float
    noop: float
    sqlite_own: float
    pg_own: float  # before the service's runs
    pg_own_after: float  # right after the service's PostgreSQL run
    pg_own_server_cpu: float | None
    sqlite: Measured | None
    pg: Measured


async def postgres_own(pg_admin: str, events: Sequence[MixEvent]) -> tuple[float, float | None]:
    """PostgreSQL's own set-based writes of ``events`` in a fresh database: events/s, and the server's CPU µs
    per event (None when the server's processes cannot be read)."""
    async with postgres_database(pg_admin) as url:
        server = await postgres_server_pid(url)
        before = tree_cpu(server, with_exited=True) if server else 0.0
        rate = await baselines.postgres_own(url, events)
        cpu = (tree_cpu(server, with_exited=True) - before) * 1e6 / len(events) if server else None
    return rate, cpu


async def measure(bootstrap: str, pg_admin: str, count: int, carts: int, options: argparse.Namespace) -> Figures:
    """Publish the mix once, then the baselines and the service process on the same events. PostgreSQL's own
    baseline is measured before and again right after the service's PostgreSQL run: this machine's speed
    drifts by up to 2x within minutes, and the ratio is to the mean of the two."""
    prefix = f"ing{uuid.uuid4().hex[:8]}"
    topics = {role: f"{prefix}.{role}" for role in ROLES}
    settings = Settings(kafka={"topics": {r: {"name": n} for r, n in topics.items()}, "partitions": 4})
    await ensure_topics(bootstrap, settings.kafka)
    events = make_mix(count, carts)
    await publish_mix(bootstrap, topics, events)
    inputs = [topics[role] for role in INPUTS]
    raw = await baselines.aiokafka_raw(bootstrap, inputs, count)
    noop = await baselines.faststream_noop(bootstrap, inputs, count)
    sqlite = None
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_own = baselines.sqlite_own(Path(tmp) / "own.db", events)
        pg_own, own_cpu = await postgres_own(pg_admin, events)
        if not options.skip_sqlite:
            sqlite = await service_rate(
                bootstrap, topics, f"sqlite+aiosqlite:///{Path(tmp) / 'svc.db'}", count, options
            )
    async with postgres_database(pg_admin) as url:
        pg = await service_rate(bootstrap, topics, url, count, options)
    pg_own_after, _cpu = await postgres_own(pg_admin, events)
    what = f"{count:,} events ({carts:,} carts, 80/5/15 % cart/payment/order, 4 partitions)"
    return Figures(what, raw, noop, sqlite_own, pg_own, pg_own_after, own_cpu, sqlite, pg)


async def run(
    bootstrap: str, pg_admin: str, count: int, carts: int, options: argparse.Namespace | None = None
) -> list[Row]:
    """Baselines and the service process on the same mix, as table rows."""
    options = options or argparse.Namespace(workers=0, profile=None, skip_sqlite=False)
    got = await measure(bootstrap, pg_admin, count, carts, options)
    workers = f", --workers {options.workers}" if options.workers else ""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    raw_base, noop_base = f"{got.raw:,.0f}/s aiokafka", f"{got.noop:,.0f}/s FastStream no-op"
    pg_own = (got.pg_own + got.pg_own_after) / 2
    own_cpu = f" (PostgreSQL {got.pg_own_server_cpu:,.0f} µs CPU/event)" if got.pg_own_server_cpu is not None else ""
    rows = [
        Row(f"ingest mix: {got.what}", "-", "-", "-", "-"),
        Row(
            "ingest, no-op FastStream batch subscriber", raw_base, f"{got.noop:,.0f}/s", _ratio(got.noop, got.raw), "-"
        ),
        Row(
            f"ingest -> PostgreSQL, service process{workers}",
            f"{pg_own:,.0f}/s PG own (mean of {got.pg_own:,.0f} before / {got.pg_own_after:,.0f} after){own_cpu}",
            f"{got.pg.rate:,.0f}/s ({got.pg.cpu_text()})",
            _ratio(got.pg.rate, pg_own),
            ">= 0.5x (goal 0.8x)",
        ),
        Row(
            "  same, to aiokafka / FastStream no-op",
            f"{raw_base} / {noop_base}",
            f"{got.pg.rate:,.0f}/s",
            f"{_ratio(got.pg.rate, got.raw)} / {_ratio(got.pg.rate, got.noop)}",
            "-",
        ),
    ]
    if got.sqlite is not None:
        rows += [
            Row(
                f"ingest -> SQLite, service process{workers}",
                f"{got.sqlite_own:,.0f}/s SQLite own",
                f"{got.sqlite.rate:,.0f}/s ({got.sqlite.cpu_text()})",
                _ratio(got.sqlite.rate, got.sqlite_own),
                ">= 0.5x",
            ),
            Row(
                "  same, to aiokafka / FastStream no-op",
                f"{raw_base} / {noop_base}",
                f"{got.sqlite.rate:,.0f}/s",
                f"{_ratio(got.sqlite.rate, got.raw)} / {_ratio(got.sqlite.rate, got.noop)}",
                "-",
            ),
        ]
    return [*rows, Row("ingest: load average at end (1, 5, 15 min)", "-", load, "-", "-")]


def main() -> None:
    """Run the ingest bench alone on its own bundled broker (or KAFKA_BOOTSTRAP_SERVERS)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--carts", type=int, default=0, help="default: events / 5")
    parser.add_argument("--workers", type=int, default=0, help="recovery run --workers (default: its own)")
    parser.add_argument("--profile", default=None, help="profile the service process: FILE.txt py-spy, else cProfile")
    parser.add_argument("--skip-sqlite", action="store_true", help="the service into PostgreSQL only (profiling)")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()
    carts = args.carts or max(1, args.events // 5)
    args.profile = args.profile and str(Path(args.profile).resolve())  # the service runs in a temp dir

    async def go(bootstrap: str) -> None:
        print_rows(await run(bootstrap, args.postgres_url, args.events, carts, args))

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        asyncio.run(go(os.environ["KAFKA_BOOTSTRAP_SERVERS"]))
        return
    with EmbeddedBroker() as broker:
        asyncio.run(go(broker.bootstrap_servers))


if __name__ == "__main__":
    main()
