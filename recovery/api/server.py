"""Serving the app with uvicorn inside the service's event loop; the service keeps the signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from recovery.api.request_limits import READ_TIMEOUT_S
from recovery.errors import ConfigError

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 5  # open requests get this long to finish once ``stop`` is set


MAX_HEAD_BYTES = 16 * 1024  # request line and headers; larger heads get 400 from h11


class SlowHeadCut(H11Protocol):
    """uvicorn's h11 protocol that closes a connection whose request head takes longer than ``head_timeout_s``.

    uvicorn has no read timeout of its own: a client trickling its headers (or sending nothing) would hold a
    connection forever, and its keep-alive timer stops at the first byte. The body's time is bounded by the
    ``RequestLimits`` middleware.
    """

    head_timeout_s: float = READ_TIMEOUT_S
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._stop_head_timer()  # the head is in; the body has the middleware's deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._start_head_timer()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)


def _protocol(head_timeout_s: float) -> type[SlowHeadCut]:
    return type("SlowHeadCutProtocol", (SlowHeadCut,), {"head_timeout_s": head_timeout_s})


class _Server(uvicorn.Server):
    """A uvicorn server that installs no signal handlers and reports when it listens."""

    def __init__(self, config: uvicorn.Config, *, started: asyncio.Event | None) -> None:
        super().__init__(config)
        self._started_event = started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service owns SIGTERM / SIGINT and sets ``stop``; uvicorn must neither catch nor re-raise them.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._started_event is not None:
            self._started_event.set()


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: any free port); ``ConfigError`` names the keys if it fails."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"http.host: cannot use {host!r}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"http.host / http.port: cannot listen on {host}:{port}: {exc} "
            "(set RECOVERY_HTTP__PORT to a free port, or 0 to pick one)"
        ) from exc
    return sock


async def serve_http(
    app: FastAPI,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    started: asyncio.Event | None = None,
    head_timeout_s: float = READ_TIMEOUT_S,
) -> None:
    """Serve ``app`` until ``stop`` is set; the bound port is ``app.state.http_port`` before ``started`` is set."""
    sock = bind(host, port)
    app.state.http_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",  # resources belong to the service, not to the app
        log_config=None,  # keep the service's logging configuration
        access_log=False,  # paths carry tokens; requests are counted in /metrics instead
        server_header=False,
        http=_protocol(head_timeout_s),  # h11, with a deadline for the request head
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    server = _Server(config, started=started)

    async def stop_when_told() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_when_told(), name="http-stop")
    try:
        log.info("http listening", extra={"host": host, "port": app.state.http_port})
        await server.serve(sockets=[sock])
    finally:
        for listener in getattr(server, "servers", []):
            listener.close()  # already closed after a normal shutdown; not when the task was cancelled
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        sock.close()
