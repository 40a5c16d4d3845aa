"""A real SMTP server (aiosmtpd) in a background thread that records what it receives.

Programmable failures answer a given SMTP reply at the MAIL, RCPT or DATA stage for the next N
transactions, and ``data_delay_s`` holds the DATA reply back (after recording the message) so a
client's timeout sees an outcome-unknown send. Usable from async tests and plain scripts alike:
``start()`` / ``stop()`` or ``with SmtpSink() as sink:``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from recovery.ingest.embedded_broker import free_port


class Stage(StrEnum):
    """Where in the SMTP transaction a programmed failure answers."""

    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


@dataclass(frozen=True, kw_only=True)
class ReceivedEmail:
    """One message the sink accepted: envelope and raw bytes as sent."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        """The parsed message (modern ``EmailMessage`` API)."""
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(kw_only=True)
class _Failure:
    stage: Stage
    reply: str
    remaining: int


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]) -> str:
        failure = self._sink._take_failure(Stage.MAIL)
        if failure:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        failure = self._sink._take_failure(Stage.RCPT)
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        failure = self._sink._take_failure(Stage.DATA)
        if failure:
            return failure
        received = ReceivedEmail(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=bytes(envelope.original_content or envelope.content),
        )
        self._sink._record(received)
        if self._sink.data_delay_s:
            await asyncio.sleep(self._sink.data_delay_s)
        return f"250 2.0.0 Ok: queued as Q{len(self._sink.received)}"


class SmtpSink:
    """A recording SMTP server on ``host:port`` with optional AUTH and STARTTLS."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        tls_cert: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.data_delay_s = 0.0
        self._credentials = (username, password) if username is not None else None
        self._tls_cert = tls_cert
        self._lock = threading.Lock()
        self._received: list[ReceivedEmail] = []
        self._failures: list[_Failure] = []
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        """``smtp://host:port``."""
        return f"smtp://{self.host}:{self.port}"

    @property
    def received(self) -> list[ReceivedEmail]:
        """A snapshot of the messages accepted so far, oldest first."""
        with self._lock:
            return list(self._received)

    def fail_next(self, reply: str, *, count: int = 1, stage: Stage = Stage.DATA) -> None:
        """Answer ``reply`` (e.g. ``"451 4.3.0 Try later"``) at ``stage`` for the next ``count`` tries."""
        with self._lock:
            self._failures.append(_Failure(stage=stage, reply=reply, remaining=count))

    def reset(self) -> None:
        """Forget received messages, programmed failures and delays."""
        with self._lock:
            self._received.clear()
            self._failures.clear()
        self.data_delay_s = 0.0

    def start(self) -> None:
        """Start serving in a background thread; returns once the server answers."""
        if self._controller is not None:
            raise RuntimeError("SmtpSink already started")
        kwargs: dict[str, Any] = {}
        if self._tls_cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self._tls_cert)
            kwargs.update(tls_context=context, require_starttls=True)
        if self._credentials is not None:
            # Without TLS, AUTH is offered but not required: aiosmtpd warns about requiring it in
            # clear text, and warnings are errors in this test suite.
            with_tls = self._tls_cert is not None
            kwargs.update(authenticator=self._authenticate, auth_required=with_tls, auth_require_tls=with_tls)
        controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self._credentials is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self._credentials
        )
        # handled=False: aiosmtpd answers 235 or 535 itself (True would mean we already replied).
        return AuthResult(success=ok, handled=False)

    def _take_failure(self, stage: Stage) -> str | None:
        with self._lock:
            for failure in self._failures:
                if failure.stage is stage and failure.remaining > 0:
                    failure.remaining -= 1
                    return failure.reply
        return None

    def _record(self, received: ReceivedEmail) -> None:
        with self._lock:
            self._received.append(received)
