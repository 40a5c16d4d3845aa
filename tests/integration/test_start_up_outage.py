"""Start-up while a dependency is down: the service waits, and a stop during the wait is a clean stop."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from recovery.app.service import Service
from recovery.render.composer import PlainComposer
from recovery.states import ChannelName
from recovery.testing import ScriptedChannel
from tests.harness import service_settings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_stop_while_the_database_is_unreachable_ends_quietly(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM during a start-up database outage stops the service without an error (no traceback, no exit 1)."""
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/nowhere"
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=url, workdir=tmp_path)
    channels = {name: ScriptedChannel(name) for name in ChannelName}
    service = Service(settings, channels=channels, composer=PlainComposer())
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="recovery.app.service")
    running = asyncio.create_task(service.run(stop))
    await asyncio.sleep(1.0)  # a few failed attempts: the service is waiting, not exiting
    assert not running.done()
    stop.set()
    await asyncio.wait_for(running, 30)  # returns: no exception
    assert any("stopped before start-up completed" in record.getMessage() for record in caplog.records)


async def test_healthz_answers_while_the_database_is_unreachable_and_readyz_says_why(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """During a start-up outage HTTP is up: /healthz 200 (no start-up probe kill), /readyz 503 naming the wait."""
    import httpx

    from tests.harness import eventually

    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/nowhere"
    settings = service_settings(bootstrap=kafka_bootstrap, database_url=url, workdir=tmp_path)
    channels = {name: ScriptedChannel(name) for name in ChannelName}
    service = Service(settings, channels=channels, composer=PlainComposer())
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        await eventually(lambda: service.http_port is not None, timeout=15)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["service"].startswith("not ready: waiting for the database")
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
