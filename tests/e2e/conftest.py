"""What the end-to-end tests share: Debian's headless Chromium, and the HTTP app served on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, async_playwright

from recovery.api import serve_http

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

Serve = Callable[[FastAPI], AbstractAsyncContextManager[str]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless (never a downloaded one); the test skips without it, unless CI requires it."""
    if CHROMIUM is None:
        if os.environ.get("RECOVERY_REQUIRE_BROWSER") == "1":
            raise RuntimeError("Chromium is required (RECOVERY_REQUIRE_BROWSER=1): apt-get install -y chromium")
        pytest.skip("Debian's chromium is not installed")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@contextlib.asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[str]:
    stop, started = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(serve_http(app, host="127.0.0.1", port=0, stop=stop, started=started))
    try:
        await asyncio.wait_for(started.wait(), timeout=10)
        yield f"http://127.0.0.1:{app.state.http_port}"
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=10)


@pytest.fixture
def serve() -> Serve:
    """``async with serve(app) as base``: the app on a real free port until the block ends."""
    return _serving
