"""``recovery run --role consumer --workers 2`` as a container runs it: two group members share the input,
every event is applied once, one scrape of the configured port shows both workers' series, the pod is not
ready while one worker is not, and a SIGKILLed supervisor takes its workers with it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from recovery.ingest.embedded_broker import free_port
from recovery.ingest.kafka import Producer, ensure_topics
from recovery.ops.worker_slot import WORKER_ENV, WorkerSlot
from recovery.settings import Settings
from tests.process import ServiceProcess

ROLES = ("cart", "payment", "order", "consent", "dead_letter", "callback_tasks", "messages")
pytestmark = pytest.mark.timeout(240)


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text(encoding="utf-8")
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            if fields.get("PPid", "").strip() == str(pid) and not fields.get("State", "").startswith("Z"):
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False
    return "State:\tZ" not in state


def _event(index: int) -> bytes:
    return json.dumps(
        {
            "id": f"w-{index}-{uuid.uuid4().hex[:6]}",
            "type": "cart.updated",
            "occurred_at": datetime.now(UTC).isoformat(),
            "cart_id": f"w-cart-{index}",
            "customer": {"id": f"w-cust-{index}", "email": f"w{index}@example.com"},
            "cart": {
                "currency": "EUR",
                "value": 10,
                "items": [{"sku": "A", "name": "A", "quantity": 1, "unit_price": 10}],
            },
        }
    ).encode()


async def _publish(kafka_bootstrap: str, topic: str, count: int) -> None:
    """``count`` cart events, one cart each (keys spread them over the partitions)."""
    producer = Producer(kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_many(topic, [(f"w-cart-{i}", _event(i)) for i in range(count)])
    finally:
        await producer.stop()


async def _processed(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM processed_events"))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


async def _topics_and_env(kafka_bootstrap: str, postgres_url: str, port: int) -> tuple[dict[str, str], dict[str, str]]:
    """Fresh topics (4 partitions each, the default) and the ``RECOVERY_*`` environment of a consumer pod."""
    prefix = f"wk{uuid.uuid4().hex[:8]}"
    topics = {role: f"{prefix}.{role}" for role in ROLES}
    await ensure_topics(kafka_bootstrap, Settings(kafka={"topics": {r: {"name": n} for r, n in topics.items()}}).kafka)
    env = {
        "RECOVERY_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "RECOVERY_KAFKA__GROUP_ID": f"{prefix}-group",
        "RECOVERY_DATABASE__URL": postgres_url,
        "RECOVERY_SECURITY__LINK_SECRET": "workers-test-link-secret-of-32-characters",
        "RECOVERY_HTTP__PORT": str(port),
        "RECOVERY_STORES": '{"default": {"name": "Maison Dupont", "address": "12 rue des Lilas, 75011 Paris"}}',
        **{f"RECOVERY_KAFKA__TOPICS__{role.upper()}__NAME": name for role, name in topics.items()},
    }
    return topics, env


async def test_two_workers_share_the_input_and_die_with_their_supervisor(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topics, env = await _topics_and_env(kafka_bootstrap, postgres_url, 0)
    env["TMPDIR"] = str(tmp_path)  # a SIGKILLed supervisor leaves its workers' port directory behind
    monkeypatch.chdir(tmp_path)  # no config file: the environment only
    service = ServiceProcess(None, tmp_path / "service.log", env=env, args=["--role", "consumer", "--workers", "2"])
    service.start()
    try:
        pid = service._process.pid if service._process else 0
        deadline = time.monotonic() + 60
        while len(_children(pid)) < 2:
            assert service.running and time.monotonic() < deadline, (tmp_path / "service.log").read_text()
            await asyncio.sleep(0.2)
        workers = _children(pid)
        await _publish(kafka_bootstrap, topics["cart"], 400)
        dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
        deadline = time.monotonic() + 120
        while await _processed(dsn) < 400:
            assert service.running and time.monotonic() < deadline, (tmp_path / "service.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
        assert await _processed(dsn) == 400
        os.kill(pid, signal.SIGKILL)  # as an OOM kill of the supervisor: no worker may go on alone
        service.kill()
        deadline = time.monotonic() + 15
        while any(_alive(worker) for worker in workers):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            await asyncio.sleep(0.1)
    finally:
        service.stop()


def _slot(pid: int) -> WorkerSlot | None:
    """The slot the supervisor gave process ``pid`` (its environment, Linux /proc)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    environ = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    return WorkerSlot.from_env({WORKER_ENV: environ.get(WORKER_ENV, "")})


def _page(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_one_scrape_of_the_configured_port_shows_every_worker(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """400 events over the 4 partitions, 2 workers: one GET of /metrics on the configured port shows lag for
    the 4 partitions and 400 applied events; /readyz fails while worker 1 is frozen and recovers after."""
    port = free_port()
    topics, env = await _topics_and_env(kafka_bootstrap, postgres_url, port)
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "service.log"
    service = ServiceProcess(None, log, env=env, args=["--role", "consumer", "--workers", "2"])
    service.start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=10) as http:

            async def answer(path: str) -> httpx.Response | None:
                assert service.running, log.read_text()[-3000:]
                try:
                    return await http.get(base + path)
                except httpx.HTTPError:
                    return None

            deadline = time.monotonic() + 90
            while (ready := await answer("/readyz")) is None or ready.status_code != 200:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.3)
            assert ready.json()["checks"]["workers"] == "ok"
            await _publish(kafka_bootstrap, topics["cart"], 400)
            cart, applied = (("topic", topics["cart"]),), (("outcome", "applied"),)
            deadline = time.monotonic() + 120
            while True:
                page = _page(r.text) if (r := await answer("/metrics")) is not None else {}
                lag = {
                    dict(k)["partition"]: v
                    for (n, k), v in page.items()
                    if n == "recovery_consumer_lag" and cart[0] in k
                }
                if page.get(("recovery_events_total", applied)) == 400 and lag == dict.fromkeys("0123", 0.0):
                    break
                assert time.monotonic() < deadline, f"{lag} {page.get(('recovery_events_total', applied))}"
                await asyncio.sleep(0.5)
            assert sum(v for (n, _), v in page.items() if n == "recovery_events_total") == 400
            assert await _processed(postgres_url.replace("postgresql+asyncpg://", "postgresql://")) == 400

            pid = service._process.pid if service._process else 0
            other = next(child for child in _children(pid) if (slot := _slot(child)) and slot.index == 1)
            os.kill(other, signal.SIGSTOP)  # a worker that answers nothing: the pod must not look ready
            try:
                frozen = await answer("/readyz")
                assert frozen is not None and frozen.status_code == 503
                assert frozen.json()["checks"]["workers"] == "not ready: worker 1: no answer"
                still = await answer("/metrics")  # its last series stay: no false counter reset
                assert still is not None and _page(still.text)[("recovery_events_total", applied)] == 400
            finally:
                os.kill(other, signal.SIGCONT)
            deadline = time.monotonic() + 30
            while (ready := await answer("/readyz")) is None or ready.status_code != 200:
                assert time.monotonic() < deadline, ready.text if ready is not None else "no answer"
                await asyncio.sleep(0.3)
    finally:
        service.stop()
