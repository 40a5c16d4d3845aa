"""Readiness by role during a Kafka outage: the `all` role keeps the shopper paths up, the consumer says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from recovery.app.roles import Role
from recovery.app.service import Service
from recovery.ingest.embedded_broker import EmbeddedBroker
from recovery.render.composer import PlainComposer
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.testing import ScriptedChannel
from tests.harness import eventually, service_settings

pytestmark = pytest.mark.kafka


@asynccontextmanager
async def running(settings: Settings, role: Role) -> AsyncIterator[httpx.AsyncClient]:
    channels = {name: ScriptedChannel(name) for name in ChannelName}
    service = Service(settings, channels=channels, composer=PlainComposer(), role=role)
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(service.run(stop, started=started))
    try:
        await asyncio.wait_for(started.wait(), 60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as http:
            yield http
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def test_a_kafka_outage_leaves_the_all_role_ready_and_the_consumer_unready(tmp_path: Path) -> None:
    """Once running, a broker outage does not take the `all` role's tracked links and unsubscribe pages out of
    the load balancer; a `consumer` pod turns unready, naming its service check."""
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        url = f"sqlite+aiosqlite:///{tmp_path}/r.db"
        settings = service_settings(bootstrap=broker.bootstrap_servers, database_url=url, workdir=tmp_path)
        async with running(settings, "all") as whole, running(settings, "consumer") as consumer:
            assert (await whole.get("/readyz")).status_code == 200
            assert (await consumer.get("/readyz")).status_code == 200
            broker.stop()

            async def consumer_unready() -> bool:
                answer = await consumer.get("/readyz")
                return answer.status_code == 503 and answer.json()["failing"] == ["service"]

            await eventually(consumer_unready, timeout=30)
            assert (await whole.get("/readyz")).status_code == 200
            # The broker back (empty, as tansu keeps nothing), so both stop promptly.
            broker = EmbeddedBroker(port=broker.port, log_path=tmp_path / "tansu.log")
            broker.start()
    finally:
        broker.stop()
