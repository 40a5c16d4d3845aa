"""``recovery run --role``: a consumer, a scheduler and an API process on one database recover a cart together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from recovery.app.roles import Role
from recovery.app.service import Service
from recovery.app.wiring import build_service
from recovery.ingest.kafka import Producer
from recovery.settings import Settings
from tests.harness import Harness, cart, customer, event, eventually, service_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@asynccontextmanager
async def role_process(settings: Settings, role: Role) -> AsyncIterator[Service]:
    """One in-process service running only the parts of ``role``."""
    service = build_service(settings, role=role)
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, started=started))
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED, timeout=60)
    if task.done():
        waiter.cancel()
        await task
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def readiness(service: Service) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as client:
        response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    checks: dict[str, str] = response.json()["checks"]
    return checks


async def test_split_roles_recover_a_cart_and_only_the_consumer_talks_to_kafka(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=postgres_url, workdir=tmp_path)
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(role_process(settings, "api"))
        consumer = await stack.enter_async_context(role_process(settings, "consumer"))
        scheduler = await stack.enter_async_context(role_process(settings, "scheduler"))
        producer = Producer(kafka_bootstrap)
        await producer.start()
        stack.push_async_callback(producer.stop)
        # No service of its own: the harness only publishes events and reads the outbox the scheduler writes.
        feeder = Harness(settings=settings, service=consumer, producer=producer, bootstrap=kafka_bootstrap)
        await feeder.send(event("cart.updated", "cart-roles", customer=customer(), cart=cart()))
        await eventually(lambda: len(feeder.outbox()) >= 1, timeout=30)

        assert [m["cart_id"] for m in feeder.outbox()] == ["cart-roles"]
        assert api.bootstrap_servers is None  # the API role never connects to Kafka
        assert scheduler.stats.received == 0  # nor does the scheduler consume
        assert await readiness(api) == {"service": "ok", "database": "ok"}  # its own tasks alive; no Kafka ping
        assert await readiness(consumer) == {"service": "ok", "database": "ok"}
