"""A local HTTP server that speaks enough of Twilio's Messages API for the real ``twilio`` client.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form-encoded, basic auth) creates a message and
answers like Twilio (``sid`` ``SM…``, ``status`` ``queued``, ``num_segments`` …); ``GET`` on the same
path lists messages newest first, filtered by ``To``, ``From`` and ``DateSent`` / ``DateSent>`` /
``DateSent<``, paged with ``PageSize`` and ``Page``; ``GET …/Messages/{sid}.json`` fetches one.

Errors use Twilio's legacy body ``{code, message, more_info, status}``, or RFC 9457 problem details
(``{type, title, status, code, detail}``) when ``problem_details`` is set, which twilio-python 9 raises
as ``TwilioServiceException`` instead of ``TwilioRestException``.

Programmable failures: ``fail_next`` (e.g. 503 for N requests, 429 with ``Retry-After``),
``fail_for`` (a status for T seconds), ``reject`` (a Twilio error code for one number) and
``response_delay_s`` (the message is recorded, then the answer is held back: an outcome-unknown send).
The server runs in its own thread and event loop: ``start()`` / ``stop()`` or ``with FakeTwilio() as t``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

from aiohttp import web

from recovery.ingest.embedded_broker import free_port

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "fake-auth-token"

_ERROR_TEXT = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "The 'To' number is not a valid phone number.",
    21602: "Message body is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
}
_STATUS_OF_CODE = {20003: 401, 20404: 404, 20429: 429, 20500: 500, 20503: 503}

# Enough of GSM 03.38 to count segments the way Twilio reports them, independently of recovery.render.sms_text.
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\f"
)


@dataclass(frozen=True, kw_only=True)
class SentSms:
    """One message the fake accepted."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    num_segments: int
    date_created: datetime
    form: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The message as Twilio's API shows it."""
        stamp = _rfc2822(self.date_created)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{self.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": self.body,
            "date_created": stamp,
            "date_sent": stamp,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": uri,
        }


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
            return self._error(failure.code, status=failure.status, headers=headers)
        if not form.get("To"):
            return self._error(21604)
        if not form.get("Body"):
            return self._error(21602)
        if rejection is not None:
            return self._error(rejection)
        sms = SentSms(
            sid="SM" + secrets.token_hex(16),
            account_sid=self.account_sid,
            to=form["To"],
            from_=form.get("From"),
            messaging_service_sid=form.get("MessagingServiceSid"),
            body=form["Body"],
            status_callback=form.get("StatusCallback"),
            num_segments=_segments(form["Body"]),
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
        query = request.query
        selected = [m for m in reversed(self.messages) if _matches(m, query)]
        page_size = int(query.get("PageSize", "50"))
        page = int(query.get("Page", "0"))
        chunk = selected[page * page_size : (page + 1) * page_size]
        path = request.path

        def page_uri(number: int) -> str:
            params = [(k, v) for k, v in query.items() if k not in {"Page", "PageSize", "PageToken"}]
            return f"{path}?{urlencode([*params, ('PageSize', page_size), ('Page', number)])}"

        more = (page + 1) * page_size < len(selected)
        return web.json_response(
            {
                "messages": [m.as_json() for m in chunk],
                "end": page * page_size + max(len(chunk) - 1, 0),
                "first_page_uri": page_uri(0),
                "next_page_uri": page_uri(page + 1) if more else None,
                "page": page,
                "page_size": page_size,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
                "start": page * page_size,
                "uri": page_uri(page),
            }
        )

    async def _fetch(self, request: web.Request) -> web.Response:
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        for message in self.messages:
            if message.sid == request.match_info["sid"]:
                return web.json_response(message.as_json())
        return self._error(20404)

    def _check_auth(self, request: web.Request) -> web.Response | None:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return self._error(20003)
        if request.match_info["account"] != self.account_sid:
            return self._error(20404)
        return None

    def _error(
        self, code: int, *, status: int | None = None, headers: dict[str, str] | None = None
    ) -> web.Response:
        status = status or _STATUS_OF_CODE.get(code, 400)
        text = _ERROR_TEXT.get(code, "Error")
        more_info = f"https://www.twilio.com/docs/errors/{code}"
        if self.problem_details:
            body: dict[str, Any] = {
                "type": more_info,
                "title": text,
                "status": status,
                "code": code,
                "detail": text,
            }
            content_type = "application/problem+json"
        else:
            body = {"code": code, "message": text, "more_info": more_info, "status": status}
            content_type = "application/json"
        return web.json_response(body, status=status, headers=headers, content_type=content_type)

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


def _matches(message: SentSms, query: Any) -> bool:
    if "To" in query and message.to != query["To"]:
        return False
    if "From" in query and message.from_ != query["From"]:
        return False
    sent = message.date_created
    if "DateSent>" in query and sent < _parse_when(query["DateSent>"]):
        return False
    if "DateSent<" in query and sent.date() > _parse_when(query["DateSent<"]).date():
        return False
    return not ("DateSent" in query and sent.date() != _parse_when(query["DateSent"]).date())


def _parse_when(text: str) -> datetime:
    # Twilio documents YYYY-MM-DD; twilio-python sends a full ISO 8601 datetime: accept both.
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _segments(body: str) -> int:
    if all(ch in _GSM for ch in body):
        septets = sum(2 if ch in "^{}\\[~]|€\f" else 1 for ch in body)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def _rfc2822(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
