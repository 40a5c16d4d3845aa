"""The demo's pages for marketers: a sign-in token, the /studio and /dashboard addresses, and staying up."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal

from rich.console import Console

from recovery.api import create_app, serve_http
from recovery.clock import SystemClock
from recovery.settings import ApiToken, Settings
from recovery.store.database import create_engine

MARKETER_NAME = "Demo marketer"


def demo_marketer_token() -> dict[str, ApiToken]:
    """A fresh sign-in token for the marketers' pages (a ``security.api_tokens`` entry)."""
    return {secrets.token_urlsafe(32): ApiToken(role="marketer", name=MARKETER_NAME)}


def marketer_token(settings: Settings) -> str:
    """The demo marketer's token among ``security.api_tokens``."""
    return next(token for token, entry in settings.security.api_tokens.items() if entry.name == MARKETER_NAME)


def print_marketer_pages(console: Console, settings: Settings, port: int | None) -> None:
    """Where the studio and the dashboard are, and the token to sign in with."""
    base = f"http://127.0.0.1:{port}" if port else settings.http.public_url.rstrip("/")
    console.print(
        f"Marketers: template studio {base}/studio · dashboard {base}/dashboard "
        f"— sign in with the marketer token [bold]{marketer_token(settings)}[/]"
    )


async def serve_until_interrupted(settings: Settings, port: int | None, console: Console) -> None:
    """Keep the pages up over the demo's database until Ctrl-C (``recovery demo`` without ``--exit``)."""
    engine = create_engine(settings.database.url)
    app = create_app(engine=engine, settings=settings, clock=SystemClock())
    stop, started = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        serving = asyncio.create_task(
            serve_http(app, host=settings.http.host, port=port or settings.http.port, stop=stop, started=started)
        )
        await started.wait()
        print_marketer_pages(console, settings, app.state.http_port)
        console.print("The pages stay up until Ctrl-C (`recovery demo --exit` stops after the report instead).")
        await serving
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
        await engine.dispose()
