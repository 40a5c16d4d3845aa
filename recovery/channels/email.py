"""The email channel: one SMTP transaction per message with aiosmtplib, errors mapped at the boundary.

Mapping, by the phase the failure happened in:

* before DATA (connect, STARTTLS, login, MAIL, RCPT): nothing was handed over, so a refused or timed-out
  connection, a disconnect or an SMTP 4xx is a ``TransientError``; an SMTP 5xx is a ``PermanentError``
  with ``code="smtp-550"`` and the like;
* the DATA reply: 4xx / 5xx as above, the server said it did not take the message;
* no DATA reply (timeout, disconnect): the server may have queued the message, so
  ``OutcomeUnknownError``. Resending is then safe enough because the ``Message-ID`` is derived from the
  idempotency key: receivers and most MTAs collapse two copies with one ``Message-ID``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate, parseaddr

import aiosmtplib

from recovery.channels.base import Delivery, OutgoingMessage
from recovery.errors import OutcomeUnknownError, PermanentError, TransientError
from recovery.states import ChannelName


class _SmtpPolicy(EmailPolicy):
    """``email.policy.SMTP``, but List-Unsubscribe is written as plain ``<url>`` targets.

    A signed link is one token longer than 78 columns, which the default folding turns into an RFC 2047
    encoded-word: no mailbox provider reads that as a URL (RFC 2369 wants ``<url>``). Each target goes
    on its own line instead, as long as it is (RFC 5322 allows up to 998 columns).
    """

    def fold_binary(self, name: str, value: str) -> bytes:
        text = str(value)
        if name.lower() == "list-unsubscribe" and text.isascii():
            return f"{name}: {text.replace(', ', ',' + self.linesep + ' ')}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


SMTP_POLICY = _SmtpPolicy(linesep="\r\n")
SMTPUTF8_POLICY = _SmtpPolicy(linesep="\r\n", utf8=True)


@dataclass(frozen=True, kw_only=True)
class EmailConfig:
    """Where and how to hand emails over to an SMTP server."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 10.0
    message_id_domain: str | None = None
    unsubscribe_mailto: str | None = None
    cert_bundle: str | None = None

    @property
    def domain(self) -> str:
        """The domain of Message-IDs and of our EHLO: configured, else the sender's."""
        if self.message_id_domain:
            return self.message_id_domain
        address = parseaddr(self.sender)[1]
        return address.rpartition("@")[2] or "localhost"


def make_message_id(key: str, domain: str) -> str:
    """The ``Message-ID`` of the message with idempotency key ``key``: the same key, the same id."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def build_email(message: OutgoingMessage, config: EmailConfig, *, date: str | None = None) -> EmailMessage:
    """The MIME message for ``message``: text, plus an HTML alternative when there is one."""
    if not message.subject:
        raise PermanentError(
            f"email {message.message_id} (flow {message.flow}, step {message.step}) has no subject: "
            "check the step's template",
            code="no-subject",
        )
    email = EmailMessage()
    # The journey's store speaks (its name, its sender's address); the channel's sender is the fallback.
    email["From"] = message.sender or config.sender
    email["To"] = message.to
    if message.reply_to:
        email["Reply-To"] = message.reply_to
    email["Subject"] = message.subject
    email["Date"] = date or formatdate(usegmt=True)
    email["Message-ID"] = make_message_id(message.message_id, config.domain)
    unsubscribe = _list_unsubscribe(message.unsubscribe_url, config.unsubscribe_mailto)
    if unsubscribe:
        email["List-Unsubscribe"] = unsubscribe
    if message.unsubscribe_url:
        # RFC 8058: mailbox providers unsubscribe with one POST to the URL, without opening a page.
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Quoted-printable keeps every line 7-bit, so no relay on the way needs 8BITMIME.
    email.set_content(message.text, cte="quoted-printable")
    if message.html:
        email.add_alternative(message.html, subtype="html", cte="quoted-printable")
    # Last: setting the content clears Content-* headers, and going multipart moves them to a part.
    email["Content-Language"] = message.locale
    return email


class EmailChannel:
    """Sends emails over SMTP; ``lookup`` cannot ask an SMTP server anything, see its docstring."""

    name = ChannelName.EMAIL

    def __init__(self, config: EmailConfig) -> None:
        self._config = config

    async def send(self, message: OutgoingMessage) -> Delivery:
        """Hand one email to the SMTP server; raise Transient/Permanent/OutcomeUnknown errors."""
        config = self._config
        email = build_email(message, config)
        envelope_from = parseaddr(message.sender or config.sender)[1]
        utf8 = not (envelope_from + message.to).isascii()
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            timeout=config.timeout_s,
            start_tls=config.starttls,
            local_hostname=config.domain,
            cert_bundle=config.cert_bundle,
        )
        try:
            try:
                await smtp.connect()
                if config.username is not None:
                    await smtp.login(config.username, config.password or "")
                options = await _envelope_options(smtp, utf8=utf8)
                encoding = "utf-8" if utf8 else "ascii"
                await smtp.mail(envelope_from, options=options, encoding=encoding)
                await smtp.rcpt(message.to, encoding=encoding)
            except aiosmtplib.SMTPResponseException as exc:
                raise _refused(exc, message) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise TransientError(
                    f"SMTP {config.host}:{config.port} failed before {message.message_id} was sent: {exc}",
                    code=_transport_code(exc),
                ) from exc
            raw = email.as_bytes(policy=SMTPUTF8_POLICY if utf8 else SMTP_POLICY)
            try:
                response = await smtp.data(raw)
            except aiosmtplib.SMTPResponseException as exc:
                raise _refused(exc, message) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise OutcomeUnknownError(
                    f"SMTP {config.host}:{config.port} gave no answer to the DATA of {message.message_id}: "
                    f"{exc}; reconcile before resending (same Message-ID)"
                ) from exc
        finally:
            await _close(smtp)
        message_id_header = str(email["Message-ID"])
        return Delivery(
            provider_id=message_id_header,
            detail={"smtp_code": response.code, "smtp_reply": response.message[:200]},
        )

    async def lookup(self, message: OutgoingMessage) -> Delivery | None:
        """Always ``None``: SMTP cannot be asked what it received.

        The reconciler then resends, which is acceptable for email only because the resent copy carries
        the same ``Message-ID`` (derived from the idempotency key), which receivers use to drop
        duplicates; SMS has no such safety net and looks messages up at the provider instead.
        """
        return None

    async def aclose(self) -> None:
        """Nothing to release: each send opens and closes its own SMTP connection."""


def _list_unsubscribe(url: str | None, mailto: str | None) -> str | None:
    targets = []
    if url:
        targets.append(f"<{url}>")
    if mailto:
        targets.append(f"<mailto:{mailto}>")
    return ", ".join(targets) or None


async def _envelope_options(smtp: aiosmtplib.SMTP, *, utf8: bool) -> list[str]:
    if not utf8:
        return []
    if smtp.is_ehlo_or_helo_needed:
        await smtp.ehlo()
    if not smtp.supports_extension("smtputf8"):
        raise PermanentError(
            "the recipient or sender address is not ASCII and the SMTP server lacks SMTPUTF8",
            code="smtp-no-smtputf8",
        )
    return ["SMTPUTF8"]


def _refused(exc: aiosmtplib.SMTPResponseException, message: OutgoingMessage) -> Exception:
    code = f"smtp-{exc.code}"
    text = f"SMTP refused {message.message_id} ({message.flow}/{message.step}): {exc.code} {exc.message}"
    if 500 <= exc.code < 600:
        return PermanentError(text, code=code)
    return TransientError(text, code=code)


def _transport_code(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "smtp-timeout"
    if isinstance(exc, ConnectionError):
        return "smtp-connect"
    return "smtp-error"


async def _close(smtp: aiosmtplib.SMTP) -> None:
    if not smtp.is_connected:
        return
    try:
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        # The message is already decided; a failed QUIT changes nothing about it.
        smtp.close()
