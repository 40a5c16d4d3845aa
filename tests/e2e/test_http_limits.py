"""Early limits on the real server (uvicorn): 413 before reading or authenticating, slow clients cut (issue 19)."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recovery.api import create_app, serve_http
from recovery.clock import ManualClock
from recovery.settings import Settings
from recovery.store.database import create_engine
from recovery.store.migrate import upgrade_to_head

NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)
TOKEN = "agent-token-for-the-limit-tests-0123456789abc"
READ_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Served:
    port: int


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The app behind uvicorn on a free port, with a 1 s read timeout instead of 30 s."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'limits.db'}")
    await upgrade_to_head(engine)
    settings = Settings(
        security={"link_secret": "link-secret-for-the-limit-tests-0123456789", "api_tokens": {TOKEN: "agent"}},
        http={"read_timeout": "1s"},
    )
    app = create_app(engine=engine, settings=settings, clock=ManualClock(NOW))
    stop, started = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(
        serve_http(app, host="127.0.0.1", port=0, stop=stop, started=started, head_timeout_s=READ_TIMEOUT_S)
    )
    await asyncio.wait_for(started.wait(), timeout=10)
    try:
        yield Served(port=app.state.http_port)
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=15)
        await engine.dispose()


async def exchange(port: int, head: bytes, body: bytes = b"", *, wait_s: float = 10.0) -> bytes:
    """Send ``head`` and ``body`` on a raw connection; everything the server answers before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), timeout=wait_s)
    finally:
        writer.close()


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_a_150_mb_body_without_a_token_gets_413_before_it_is_read(served: Served) -> None:
    """Content-Length 150 MB, no Authorization: 413 at once (not 401 after reading), memory flat."""
    before = rss_mib()
    head = (
        b"POST /api/templates/en/x.sms.txt/preview HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 157286400\r\n\r\n"
    )
    started = time.perf_counter()
    answer = await exchange(served.port, head, b"x" * (1024 * 1024))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.perf_counter() - started < 5
    assert rss_mib() - before < 50


async def test_a_streamed_body_past_the_limit_is_cut_with_413(served: Served) -> None:
    """No Content-Length (chunked): the bytes are counted as they arrive, and 64 KiB + 1 is refused."""
    head = (
        b"POST /api/callbacks/task-1/complete HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {TOKEN}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * (16 * 1024)
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    answer = await exchange(served.port, head, body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


async def test_a_client_trickling_its_headers_is_cut(served: Served) -> None:
    """One header byte every 0.2 s never completes a request: the connection is closed after the read timeout."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    started = time.perf_counter()
    closed_after: float | None = None
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100:
            writer.write(bytes([byte]))
            try:
                await writer.drain()
            except ConnectionError:
                break
            try:
                if await asyncio.wait_for(reader.read(1), timeout=0.2) == b"":
                    closed_after = time.perf_counter() - started
                    break
            except TimeoutError:
                continue
    finally:
        writer.close()
    assert closed_after is not None, "the server kept the trickling client"
    assert READ_TIMEOUT_S - 0.2 <= closed_after < READ_TIMEOUT_S + 2


async def test_a_client_trickling_its_body_is_answered_408_and_cut(served: Served) -> None:
    """Headers in, then a body that never finishes: 408 after the read timeout, before authentication."""
    head = (
        b"POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    started = time.perf_counter()
    answer = await exchange(served.port, head, b"token=abc", wait_s=READ_TIMEOUT_S + 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.perf_counter() - started < READ_TIMEOUT_S + 3


async def test_a_connection_that_sends_nothing_is_closed(served: Served) -> None:
    """A client that connects and stays silent does not hold a connection past the read timeout."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    started = time.perf_counter()
    try:
        assert await asyncio.wait_for(reader.read(1), timeout=READ_TIMEOUT_S + 3) == b""
    finally:
        writer.close()
    assert time.perf_counter() - started < READ_TIMEOUT_S + 2
