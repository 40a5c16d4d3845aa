"""Shared pieces of the benches: settings, a throwaway PostgreSQL database, a running service, the table."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from recovery.app.service import Service
from recovery.app.wiring import build_channels, build_composer
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.settings import Settings
from recovery.steps.guards import QuietHoursPolicy

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TOPIC_ROLES = ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages")


@dataclass(frozen=True)
class Row:
    """One line of the bench table."""

    figure: str
    baseline: str
    value: str
    ratio: str
    target: str


def settings_for(
    bootstrap: str, database_url: str, workdir: Path, flows: str, *, twilio: FakeTwilio | None = None, **extra: Any
) -> Settings:
    """Unique topics and group, no quiet hours, the given flows; SMS through ``twilio`` when given."""
    prefix = f"b{uuid.uuid4().hex[:10]}"
    flows_file = workdir / f"{prefix}-flows.yaml"
    flows_file.write_text(flows, encoding="utf-8")
    channels: dict[str, Any] = {"transport": "outbox", "outbox_dir": workdir / "outbox"}
    if twilio is not None:
        channels = {
            "transport": "providers",
            "outbox_dir": workdir / "outbox",
            "email": {"smtp_host": "127.0.0.1", "smtp_port": 9, "sender": "shop@example.com"},
            "sms": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "sender": "+15005550006",
                "api_base_url": twilio.url,
            },
        }
    return Settings(
        kafka={
            "bootstrap_servers": bootstrap,
            "group_id": f"{prefix}-group",
            "topics": {role: {"name": f"{prefix}.{role}"} for role in TOPIC_ROLES},
            "partitions": 4,
        },
        database={"url": database_url},
        flows_file=flows_file,
        channels=channels,
        guards={"quiet_hours": QuietHoursPolicy(channels=())},
        security={"link_secret": "bench-link-secret-of-32-characters-" + prefix},
        http={"port": 0},
        **extra,
    )


@asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one bench, dropped afterwards; yields its URL."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Service]:
    """The service in this process, started and stopped cleanly."""
    service = Service(settings, channels=build_channels(settings), composer=build_composer(settings))
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, started=started))
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED, timeout=120)
    if task.done():
        waiter.cancel()
        await task  # raises the start-up error instead of waiting forever
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def wait_for(condition: Callable[[], bool], within: float, poll: float = 0.005) -> float:
    """Wait until ``condition()`` holds; returns the monotonic time it was seen true."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench condition not met within {within:.0f}s")
        await asyncio.sleep(poll)
    return time.monotonic()


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (share in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def print_rows(rows: list[Row]) -> None:
    """The rows as an aligned text table."""
    header = Row("figure", "baseline", "value", "ratio", "target")
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in header.__dataclass_fields__]
    for row in [header, *rows]:
        cells = [getattr(row, f).ljust(w) for f, w in zip(header.__dataclass_fields__, widths, strict=True)]
        print("| " + " | ".join(cells) + " |", flush=True)


def tree_cpu(pid: int, *, with_exited: bool = False) -> float:
    """CPU seconds (user + system) a process and its live descendants used so far; ``with_exited`` adds what its
    exited children used (a PostgreSQL server's finished backends)."""
    total, todo, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:  # exited meanwhile
            continue
        total += (int(stat[11]) + int(stat[12])) / tick  # utime, stime (fields 14 and 15)
        if with_exited and current == pid:
            total += (int(stat[13]) + int(stat[14])) / tick  # cutime, cstime: children waited for
        todo += [int(child) for child in children]
    return total


async def postgres_server_pid(url: str) -> int | None:
    """The PostgreSQL server's main process when it runs on this machine (its CPU is then readable), else None."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        stat = Path(f"/proc/{backend}/stat").read_text()  # noqa: ASYNC240 - /proc, answered from memory
        return int(stat.rsplit(")", 1)[1].split()[1])  # the parent: the postmaster
    except (OSError, IndexError, ValueError):
        return None  # another host (or container): no figure
    finally:
        await conn.close()


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, all cores (/proc/stat): the share of the machine a
    span kept busy is the difference of two readings."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)
