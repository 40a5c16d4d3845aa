"""The fake Twilio server: a thread with its own event loop, programmable failures, recorded messages."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from aiohttp import web

from recovery.demo.sinks.twilio.messages import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    SentSms,
    error_response,
    list_page,
    segments,
)
from recovery.ingest.embedded_broker import free_port


@dataclass(kw_only=True)
class _Failure:
    status: int
    code: int
    remaining: int | None
    until: float | None
    retry_after: str | None


class FakeTwilio:
    """A Twilio-compatible Messages endpoint on ``url`` that records what it receives."""

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        host: str = "127.0.0.1",
        port: int | None = None,
        problem_details: bool = False,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.port = port or free_port(host)
        self.problem_details = problem_details
        self.response_delay_s = 0.0
        self._lock = threading.Lock()
        self._messages: list[SentSms] = []
        self._create_attempts = 0
        self._failures: list[_Failure] = []
        self._rejections: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """The base URL to give the client instead of ``https://api.twilio.com``."""
        return f"http://{self.host}:{self.port}"

    @property
    def messages(self) -> list[SentSms]:
        """A snapshot of accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def create_attempts(self) -> int:
        """How many create requests arrived, failed ones included."""
        with self._lock:
            return self._create_attempts

    def fail_next(
        self, status: int = 503, *, count: int = 1, code: int | None = None, retry_after: float | None = None
    ) -> None:
        """Answer the next ``count`` create requests with ``status`` (and ``Retry-After`` if given)."""
        self._add_failure(status, code, remaining=count, until=None, retry_after=retry_after)

    def fail_for(self, seconds: float, status: int = 503, *, code: int | None = None) -> None:
        """Answer every create request with ``status`` for the next ``seconds``."""
        self._add_failure(status, code, remaining=None, until=time.monotonic() + seconds, retry_after=None)

    def reject(self, number: str, code: int) -> None:
        """Refuse every message to ``number`` with Twilio error ``code`` (e.g. 21211, 21610, 21614)."""
        with self._lock:
            self._rejections[number] = code

    def reset(self) -> None:
        """Forget messages, failures, rejections and delays."""
        with self._lock:
            self._messages.clear()
            self._failures.clear()
            self._rejections.clear()
            self._create_attempts = 0
        self.response_delay_s = 0.0

    def start(self) -> None:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("FakeTwilio already started")
        ready = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(ready, errors), daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]

    def stop(self) -> None:
        """Stop serving, cut held-back answers short and free the port; safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None or self._loop is None:
            return
        loop, stopping = self._loop, self._stopping
        if stopping is not None:
            loop.call_soon_threadsafe(stopping.set)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- server ---------------------------------------------------------------------------------------

    def _serve(self, ready: threading.Event, errors: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.5)
        try:
            loop.run_until_complete(self._open(runner))
        except BaseException as exc:  # reported to start() in the calling thread
            errors.append(exc)
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    async def _open(self, runner: web.AppRunner) -> None:
        self._stopping = asyncio.Event()
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()

    def _app(self) -> web.Application:
        app = web.Application()
        base = "/2010-04-01/Accounts/{account}/Messages"
        app.router.add_post(base + ".json", self._create)
        app.router.add_get(base + ".json", self._list)
        app.router.add_get(base + "/{sid}.json", self._fetch)
        return app

    async def _create(self, request: web.Request) -> web.Response:
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        form = {key: str(value) for key, value in (await request.post()).items()}
        with self._lock:
            self._create_attempts += 1
            failure = self._take_failure()
            rejection = self._rejections.get(form.get("To", ""))
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return self._error_response(failure.code, status=failure.status, headers=headers)
        if not form.get("To"):
            return self._error_response(21604)
        if not form.get("Body"):
            return self._error_response(21602)
        if rejection is not None:
            return self._error_response(rejection)
        sms = SentSms(
            sid="SM" + secrets.token_hex(16),
            account_sid=self.account_sid,
            to=form["To"],
            from_=form.get("From"),
            messaging_service_sid=form.get("MessagingServiceSid"),
            body=form["Body"],
            status_callback=form.get("StatusCallback"),
            num_segments=segments(form["Body"]),
            date_created=datetime.now(UTC).replace(microsecond=0),
            form=form,
        )
        with self._lock:
            self._messages.append(sms)
        if self.response_delay_s and self._stopping is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.response_delay_s)
        return web.json_response(sms.as_json(), status=201)

    async def _list(self, request: web.Request) -> web.Response:
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        return web.json_response(list_page(list(reversed(self.messages)), request.query, request.path))

    async def _fetch(self, request: web.Request) -> web.Response:
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        for message in self.messages:
            if message.sid == request.match_info["sid"]:
                return web.json_response(message.as_json())
        return self._error_response(20404)

    def _error_response(
        self, code: int, *, status: int | None = None, headers: dict[str, str] | None = None
    ) -> web.Response:
        return error_response(code, status=status, headers=headers, problem_details=self.problem_details)

    def _check_auth(self, request: web.Request) -> web.Response | None:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return self._error_response(20003)
        if request.match_info["account"] != self.account_sid:
            return self._error_response(20404)
        return None

    def _add_failure(
        self,
        status: int,
        code: int | None,
        *,
        remaining: int | None,
        until: float | None,
        retry_after: float | None,
    ) -> None:
        failure = _Failure(
            status=status,
            code=code or (20429 if status == 429 else 20000 + status),
            remaining=remaining,
            until=until,
            retry_after=None if retry_after is None else f"{retry_after:g}",
        )
        with self._lock:
            self._failures.append(failure)

    def _take_failure(self) -> _Failure | None:
        now = time.monotonic()
        for failure in self._failures:
            if failure.until is not None and now < failure.until:
                return failure
            if failure.remaining:
                failure.remaining -= 1
                return failure
        return None
