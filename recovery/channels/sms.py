"""The SMS channel: Twilio's Messages API through the official client, errors mapped at the boundary.

The client is twilio-python 9 (tested with 9.13) with an ``AsyncTwilioHttpClient`` subclass that
rewrites ``https://api.twilio.com`` to ``api_base_url``. Rewriting in the HTTP client rather than
setting ``client.api.base_url`` also covers the next-page URLs the client builds while listing,
whatever domain object builds them.

Mapping:

* HTTP 429 / Twilio 20429, HTTP 408 and 5xx, a refused or timed-out connection → ``TransientError``
  (``retry_after`` from the ``Retry-After`` header); Twilio documents 429 as never processed;
* any other 4xx → ``PermanentError`` with the Twilio code (``"21211"`` invalid number, ``"21610"``
  replied STOP, ``"21614"`` not a mobile, ``"20003"`` bad credentials …);
* no answer after the request went out (read timeout, dropped connection) → ``OutcomeUnknownError``:
  Twilio may have queued it; ``lookup`` decides before anything is resent.

Both ``TwilioRestException`` (legacy error body) and ``TwilioServiceException`` (RFC 9457 problem
details) are handled. The HTTP client's own request log is not used: it would log phone numbers.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
from sqlalchemy.ext.asyncio import AsyncConnection
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from recovery.channels.base import Delivery, OutgoingMessage
from recovery.clock import Clock, SystemClock
from recovery.consent.authority import AddressKeys
from recovery.consent.ledger import ConsentChannel, ConsentSource, record_consent
from recovery.errors import OutcomeUnknownError, PermanentError, RecoveryError, TransientError
from recovery.render.sms_text import describe_sms
from recovery.states import ChannelName

logger = logging.getLogger(__name__)

TWILIO_API_BASE_URL = "https://api.twilio.com"
CALLBACK_KEY_PARAM = "message_id"
RECIPIENT_OPTED_OUT = "21610"  # Twilio: the recipient replied STOP; nothing more can be sent to the number

# Twilio's exceptions drop the response headers, so the HTTP client leaves ``Retry-After`` here for
# the send that is awaiting it (a context variable: concurrent sends never see each other's).
_retry_after: ContextVar[float | None] = ContextVar("twilio_retry_after", default=None)


@dataclass(frozen=True, kw_only=True)
class SmsConfig:
    """Twilio account, sender and endpoint; ``sender`` is an E.164 number or a Messaging Service SID."""

    account_sid: str
    auth_token: str
    sender: str
    status_callback_url: str
    api_base_url: str = TWILIO_API_BASE_URL
    timeout_s: float = 10.0
    max_segments: int = 3
    lookup_window: timedelta = timedelta(days=2)
    lookup_max_pages: int = 5


async def record_if_opted_out(
    conn: AsyncConnection, customer_key: str, code: str | None, now: datetime, addresses: AddressKeys
) -> bool:
    """Twilio's 21610 (at send or in a receipt) means the shopper replied STOP: record an SMS opt-out.

    The one place that rule lives; True when ``code`` was 21610 (the ledger entry is then written).
    """
    if code != RECIPIENT_OPTED_OUT:
        return False
    await record_consent(
        conn,
        customer_key,
        ConsentChannel.SMS,
        consent=False,
        source=ConsentSource.PROVIDER_21610,
        now=now,
        addresses=addresses,
    )
    return True


class SmsChannel:
    """Sends SMS through Twilio; reconciles an unknown outcome by listing the recipient's messages."""

    name = ChannelName.SMS

    def __init__(self, config: SmsConfig, *, clock: Clock | None = None) -> None:
        self._config = config
        self._clock = clock or SystemClock()
        self._http = _BaseUrlHttpClient(base_url=config.api_base_url, timeout_s=config.timeout_s, clock=self._clock)
        self._client = Client(
            config.account_sid,
            config.auth_token,
            account_sid=config.account_sid,
            http_client=self._http,
            # Not empty (an empty mapping makes twilio fall back to os.environ): a TWILIO_EDGE or
            # TWILIO_REGION there would move the host away from the base URL this channel rewrites.
            environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
        )

    async def send(self, message: OutgoingMessage) -> Delivery:
        """Create the message at Twilio; raise Transient/Permanent/OutcomeUnknown errors."""
        info = describe_sms(message.text, self._config.max_segments)
        if info.over_limit:
            logger.warning(
                "sms longer than the segment budget",
                extra={
                    "message_id": message.message_id,
                    "journey_id": message.journey_id,
                    "step": message.step,
                    "segments": info.segments,
                    "max_segments": self._config.max_segments,
                },
            )
        _retry_after.set(None)
        try:
            created = await self._client.messages.create_async(
                to=message.to,
                body=message.text,
                status_callback=self.status_callback_for(message),
                **self._sender_fields(message),
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _map_twilio_error(exc, message, _retry_after.get()) from exc
        except TwilioException as exc:
            raise TransientError(f"Twilio answered {message.message_id} oddly: {exc}", code="twilio") from exc
        detail: dict[str, str | int] = {
            "encoding": str(info.encoding),
            "segments": info.segments,
            "characters": info.characters,
        }
        if created.status:
            detail["status"] = str(created.status)
        provider_segments = _as_int(created.num_segments)
        if provider_segments is not None:
            detail["provider_segments"] = provider_segments
        return Delivery(provider_id=created.sid, detail=detail)

    async def lookup(self, message: OutgoingMessage) -> Delivery | None:
        """The message if Twilio has it (same recipient, sender and body, recent), else ``None``.

        Twilio's Messages API accepts no client reference or idempotency key and does not echo the
        ``StatusCallback`` URL, so the match is on what it does return: recipient, sender, a
        ``DateSent`` lower bound and the exact body (rendered bodies carry per-message links, so two
        journeys rarely share one). Raises ``OutcomeUnknownError`` when Twilio cannot be asked or
        there are more pages than ``lookup_max_pages``. Call it after the claim lease has expired, not
        right after the timeout: ``DateSent`` is only set once Twilio has left the ``queued`` state.
        """
        since = self._clock.now() - self._config.lookup_window
        filters: dict[str, Any] = {"to": message.to, "date_sent_after": since}
        sender = message.sender or self._config.sender
        if not sender.startswith("MG"):
            filters["from_"] = sender
        try:
            page = await self._client.messages.page_async(page_size=50, **filters)
            for _ in range(self._config.lookup_max_pages):
                for found in page:
                    if _same_body(found.body, message.text):
                        return Delivery(
                            provider_id=found.sid,
                            detail={"status": str(found.status), "reconciled": 1},
                        )
                page = await page.next_page_async()
                if page is None:
                    return None
        except (TwilioException, RecoveryError) as exc:
            raise OutcomeUnknownError(f"cannot ask Twilio about {message.message_id}: {exc}") from exc
        raise OutcomeUnknownError(
            f"more than {self._config.lookup_max_pages} pages of messages to this recipient since "
            f"{since:%Y-%m-%d}: cannot tell whether {message.message_id} was sent"
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.close()

    def status_callback_for(self, message: OutgoingMessage) -> str:
        """The ``StatusCallback`` URL, tagged with our idempotency key so receipts map back to the row."""
        parts = urlsplit(self._config.status_callback_url)
        query = [*parse_qsl(parts.query), (CALLBACK_KEY_PARAM, message.message_id)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _sender_fields(self, message: OutgoingMessage) -> dict[str, str]:
        # The journey's store's sender (e.g. an alphanumeric id per shop front), else the channel's.
        sender = message.sender or self._config.sender
        return {"messaging_service_sid": sender} if sender.startswith("MG") else {"from_": sender}


class _BaseUrlHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """Twilio's async HTTP client, pointed at ``base_url`` with separate connect and read timeouts."""

    def __init__(self, *, base_url: str, timeout_s: float, clock: Clock) -> None:
        self._clock = clock
        # No pool yet: aiohttp wants its session created inside the running event loop.
        super().__init__(pool_connections=False, timeout=timeout_s)
        self._base_url = base_url.rstrip("/")
        # Connect and read are timed apart: a connect timeout means nothing was sent (retry), a
        # read timeout means the request went out and its outcome is unknown.
        self._timeouts = aiohttp.ClientTimeout(total=None, connect=timeout_s, sock_read=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's HttpClient signature; ours is fixed
        allow_redirects: bool = False,
    ) -> Response:
        """One HTTP exchange; connection failures become ``TransientError`` / ``OutcomeUnknownError``."""
        if url.startswith(TWILIO_API_BASE_URL):
            url = self._base_url + url[len(TWILIO_API_BASE_URL) :]
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeouts)
        method = method.upper()
        query = {key: str(value) for key, value in (params or {}).items()}
        headers = dict(headers or {})
        if auth:
            # aiohttp 3.14 deprecates BasicAuth objects (a warning, an error in our tests): send the header.
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        try:
            async with self._session.request(
                method,
                url,
                params=query,
                data=data,
                headers=headers,
                allow_redirects=allow_redirects,
            ) as answer:
                text = await answer.text()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise TransientError(f"Twilio unreachable at {self._base_url}: {exc!r}", code="connect") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            if method == "POST":
                raise OutcomeUnknownError(
                    f"no answer from Twilio at {self._base_url} after the request was sent: {exc!r}"
                ) from exc
            raise TransientError(f"Twilio {method} failed at {self._base_url}: {exc!r}", code="read") from exc
        if answer.status >= 400:
            _retry_after.set(_parse_retry_after(answer.headers.get("Retry-After"), now=self._clock.now()))
        return Response(answer.status, text, answer.headers)

    async def close(self) -> None:
        """Close the pool, if one was opened."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _map_twilio_error(
    exc: TwilioRestException | TwilioServiceException, message: OutgoingMessage, retry_after: float | None
) -> RecoveryError:
    status = int(exc.status)
    code = str(exc.code) if exc.code else str(status)
    where = f"Twilio refused {message.message_id} ({message.flow}/{message.step})"
    text = f"{where}: HTTP {status}, code {code}"
    if status == 429 or code == "20429" or status == 408 or status >= 500:
        return TransientError(text, code=code, retry_after=retry_after)
    if 400 <= status < 500:
        return PermanentError(text, code=code)
    return TransientError(text, code=code, retry_after=retry_after)


def _parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds, or an HTTP date counted from ``now``."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, with no claim about the sender's zone (RFC 5322)
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _same_body(found: str | None, sent: str) -> bool:
    # Trial accounts prefix "Sent from your Twilio trial account - " to every body.
    return found is not None and (found == sent or found.endswith(" - " + sent))


def _as_int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
