"""``recovery run --role consumer --workers 2`` as a container runs it: two group members share the input,
every event is applied once, and a SIGKILLed supervisor takes its workers with it."""

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
import pytest

from recovery.ingest.kafka import Producer, ensure_topics
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


async def _processed(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM processed_events"))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


async def test_two_workers_share_the_input_and_die_with_their_supervisor(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"wk{uuid.uuid4().hex[:8]}"
    topics = {role: f"{prefix}.{role}" for role in ROLES}
    await ensure_topics(kafka_bootstrap, Settings(kafka={"topics": {r: {"name": n} for r, n in topics.items()}}).kafka)
    env = {
        "RECOVERY_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "RECOVERY_KAFKA__GROUP_ID": f"{prefix}-group",
        "RECOVERY_DATABASE__URL": postgres_url,
        "RECOVERY_SECURITY__LINK_SECRET": "workers-test-link-secret-of-32-characters",
        "RECOVERY_HTTP__PORT": "0",
        "RECOVERY_STORES": '{"default": {"name": "Maison Dupont", "address": "12 rue des Lilas, 75011 Paris"}}',
        **{f"RECOVERY_KAFKA__TOPICS__{role.upper()}__NAME": name for role, name in topics.items()},
    }
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
        producer = Producer(kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_many(topics["cart"], [(f"w-cart-{i}", _event(i)) for i in range(400)])
        finally:
            await producer.stop()
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
