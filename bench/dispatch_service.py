"""The dispatch benches' service as users run it: ``recovery run`` in its own process, ``RECOVERY_*`` only.

The cwd is an empty temp dir (no config/recovery.yaml: the shipped templates are used), the flows come from
``RECOVERY_FLOWS_FILE``, SMS go through the real ``twilio`` client to a Twilio-shaped server (``CountingTwilio``:
the demo's ``FakeTwilio`` plus a count of the requests it is answering at once), on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import TOPIC_ROLES, wait_for
from bench.events import payment_failed, phone, publish
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.ingest.embedded_broker import free_port
from recovery.ingest.kafka import Producer, ensure_topics
from recovery.settings import KafkaSettings
from tests.process import ServiceProcess


class CountingTwilio(FakeTwilio):
    """``FakeTwilio`` counting create requests in flight: the most at once and the time-weighted sum."""

    def __init__(self) -> None:
        super().__init__()
        self._gauge = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self._area = 0.0  # in-flight x seconds since the last reset_gauge
        self._changed = time.monotonic()

    def _move(self, delta: int) -> None:
        with self._gauge:
            now = time.monotonic()
            self._area += self.in_flight * (now - self._changed)
            self._changed = now
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def area(self) -> float:
        """In-flight x seconds so far (two readings give the average in flight between them)."""
        with self._gauge:
            return self._area + self.in_flight * (time.monotonic() - self._changed)

    def reset_gauge(self) -> None:
        with self._gauge:
            self.max_in_flight = self.in_flight

    async def _create(self, request: web.Request) -> web.Response:
        self._move(+1)
        try:
            return await super()._create(request)
        finally:
            self._move(-1)


def cpu_seconds(services: Sequence[ServiceProcess]) -> float:
    """User + system CPU seconds the services' processes have used so far (Linux /proc), the figure that a
    shared machine's load does not skew as much as a rate."""
    total = 0.0
    for service in services:
        process = service._process  # the bench reads its own child's /proc entry
        if process is None:
            continue
        fields = Path(f"/proc/{process.pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def pg_transactions(url: str) -> tuple[int, int]:
    """Commits and rollbacks PostgreSQL counted in the bench database so far (``pg_stat_database``; backends
    report theirs when idle, within ~10 s). A rollback on an untouched checkout is the pool's pre-ping."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()")
                )
            ).one()
    finally:
        await engine.dispose()
    return int(row[0]), int(row[1])


def flows(after_s: int) -> str:
    """One payment-failure flow whose SMS comes due ``after_s`` seconds after the event."""
    return (
        "flows:\n  - name: payment_failed\n    trigger: payment.failed\n    steps:\n"
        f"      - {{name: retry_payment, after: {after_s}s, channel: sms, template: payment_failed}}\n"
    )


class Deployment:
    """One configuration (topics, group, database, provider) and its ``recovery run`` processes."""

    def __init__(self, bootstrap: str, database_url: str, twilio: FakeTwilio, workdir: Path, flows_yaml: str) -> None:
        self.database_url = database_url
        prefix = f"b{uuid.uuid4().hex[:10]}"
        self.topics = {role: {"name": f"{prefix}.{role}"} for role in TOPIC_ROLES}
        self.kafka = KafkaSettings(
            bootstrap_servers=bootstrap, group_id=f"{prefix}-group", topics=self.topics, partitions=4
        )
        self.workdir = workdir
        flows_file = workdir / f"{prefix}-flows.yaml"
        flows_file.write_text(flows_yaml, encoding="utf-8")
        self.env = {
            "RECOVERY_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "RECOVERY_KAFKA__GROUP_ID": f"{prefix}-group",
            "RECOVERY_KAFKA__TOPICS": json.dumps(self.topics),
            "RECOVERY_DATABASE__URL": database_url,
            "RECOVERY_FLOWS_FILE": str(flows_file),
            "RECOVERY_CHANNELS__SMS__ACCOUNT_SID": twilio.account_sid,
            "RECOVERY_CHANNELS__SMS__AUTH_TOKEN": twilio.auth_token,
            "RECOVERY_CHANNELS__SMS__SENDER": "+15005550006",
            "RECOVERY_CHANNELS__SMS__API_BASE_URL": twilio.url,
            # The shoppers are in Paris: the bench must not land in their quiet hours.
            "RECOVERY_GUARDS__QUIET_HOURS__CHANNELS": "[]",
            "RECOVERY_STORES": json.dumps({"default": {"name": "Maison Dupont", "address": "12 rue des Lilas, Paris"}}),
            "RECOVERY_SECURITY__LINK_SECRET": "bench-link-secret-of-32-characters-" + prefix,
        }
        self.processes: list[ServiceProcess] = []
        self.ports: list[int] = []

    def process(self, index: int, extra_env: dict[str, str] | None = None, args: Sequence[str] = ()) -> ServiceProcess:
        """Replica ``index`` (not started): its own HTTP port and log file, the service's env only."""
        port = free_port()
        env = self.env | {"RECOVERY_HTTP__PORT": str(port)} | (extra_env or {})
        service = ServiceProcess(None, self.workdir / f"service-{index}.log", env=env, args=args)
        self.ports.append(port)
        self.processes.append(service)
        return service


async def wait_ready(ports: Sequence[int], within: float = 120) -> None:
    """Every replica answers ``/readyz`` with 200."""
    async with aiohttp.ClientSession() as session:

        async def ready() -> bool:
            for port in ports:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status != 200:
                            return False
                except aiohttp.ClientError:
                    return False
            return True

        deadline = time.monotonic() + within
        while not await ready():
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not become ready")
            await asyncio.sleep(0.2)


@asynccontextmanager
async def running(
    deployment: Deployment,
    replicas: int = 1,
    cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> AsyncIterator[list[ServiceProcess]]:
    """``replicas`` ``recovery run`` processes started in an empty cwd, ready, stopped with SIGTERM after;
    ``args`` are added to ``run`` (e.g. ``--log-level warning``)."""
    await ensure_topics(deployment.kafka.bootstrap_servers, deployment.kafka)
    run_dir = cwd or deployment.workdir / "cwd"
    run_dir.mkdir(exist_ok=True)
    services = [deployment.process(i, extra_env, args) for i in range(replicas)]
    here = Path.cwd()
    os.chdir(run_dir)  # Popen inherits it: the service sees no config/ nor templates/ of the checkout
    try:
        for service in services:
            service.start()
    finally:
        os.chdir(here)
    try:
        await wait_ready(deployment.ports[-replicas:])
        yield services
    finally:
        for service in services:
            await asyncio.to_thread(service.stop, 60)


async def warm_up(deployment: Deployment, twilio: FakeTwilio, count: int = 16) -> None:
    """A few payment failures end to end (every partition assigned, pools and clients warm), then forgotten."""
    producer = Producer(deployment.kafka.bootstrap_servers)
    await producer.start()
    try:
        events = [payment_failed(80_000_000 + i) for i in range(count)]
        await publish(producer, deployment.kafka.topics, events)
    finally:
        await producer.stop()
    await wait_for(lambda: len(twilio.messages) >= count, within=120, poll=0.05)
    await asyncio.sleep(1.0)
    delay = twilio.response_delay_s
    twilio.reset()
    twilio.response_delay_s = delay


__all__ = ["CountingTwilio", "Deployment", "flows", "phone", "running", "wait_ready", "warm_up"]
