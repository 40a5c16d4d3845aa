"""Signed links in messages: tracked clicks (``/r/{token}``) and unsubscribe (``/u/{token}``); no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from recovery.clock import Clock, SystemClock
from recovery.errors import ConfigError, RecoveryError
from recovery.keys import Purpose, derive_key

# One salt per purpose, so a click token can never be replayed as an unsubscribe token and vice versa.
_CLICK_SALT = "recovery.click.v1"
_UNSUBSCRIBE_SALT = "recovery.unsubscribe.v1"
_CALLBACK_SALT = "recovery.callback.v1"
_FEEDBACK_SALT = "recovery.feedback.v1"
_LINK_SCHEMES = frozenset({"http", "https"})
_EXPIRED = "link has expired"


class InvalidLink(RecoveryError):
    """A token was forged, altered, signed with another secret, or has expired."""


@dataclass(frozen=True, kw_only=True)
class TrackedLink:
    """What a click token says: which message the link was in and where it leads."""

    message_id: str
    target: str


@dataclass(frozen=True, kw_only=True)
class UnsubscribeToken:
    """What an unsubscribe token says: who asked to stop, and for which channel."""

    customer_key: str
    channel: str


class _ClockSigner(TimestampSigner):
    """A timestamp signer that reads the injected clock, so expiry is testable without sleeping."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock.now().timestamp())


class LinkSigner:
    """Builds and reads the service's signed, expiring link tokens."""

    def __init__(
        self,
        secret: str,
        public_url: str,
        *,
        clock: Clock | None = None,
        previous_secret: str | None = None,
        previous_until: datetime | None = None,
    ) -> None:
        if not secret:
            raise ConfigError("security.link_secret: a non-empty secret is needed to sign links")
        self._public_url = public_url.rstrip("/")
        self._clock = clock or SystemClock()
        # Rotation: links signed with the previous secret stay valid until ``previous_until`` (or always).
        self._clicks = self._serializer(secret, _CLICK_SALT)
        self._unsubscribes = self._serializer(secret, _UNSUBSCRIBE_SALT)
        self._callbacks = self._serializer(secret, _CALLBACK_SALT)
        self._feedback = self._serializer(secret, _FEEDBACK_SALT)
        self._previous_until = previous_until
        self._previous = {
            salt.encode(): self._serializer(previous_secret, salt)
            for salt in (_CLICK_SALT, _UNSUBSCRIBE_SALT, _CALLBACK_SALT, _FEEDBACK_SALT)
            if previous_secret
        }

    def _serializer(self, secret: str, salt: str) -> URLSafeTimedSerializer:
        kwargs: dict[str, Any] = {"signer": _ClockSigner, "signer_kwargs": {"clock": self._clock}}
        # Signed with the links' own key derived from the secret, never the secret itself (recovery.keys).
        return URLSafeTimedSerializer(derive_key(secret, Purpose.LINKS), salt=salt, **kwargs)

    def _loads(self, serializer: URLSafeTimedSerializer, token: str, max_age: timedelta | None) -> object:
        """Verify with the current secret, then with the previous one while it is still accepted."""
        try:
            return _loads(serializer, token, max_age)
        except InvalidLink as exc:
            previous = self._previous.get(serializer.salt or b"")
            still_accepted = self._previous_until is None or self._clock.now() < self._previous_until
            if previous is None or not still_accepted or str(exc) == _EXPIRED:
                raise
            return _loads(previous, token, max_age)

    def tracked_url(self, message_id: str, target: str) -> str:
        """The ``{public_url}/r/{token}`` link that records a click on ``target`` and redirects there."""
        if urlsplit(target).scheme.lower() not in _LINK_SCHEMES:
            raise InvalidLink(f"only http(s) links can be tracked, not {target[:60]!r}")
        token = self._clicks.dumps([message_id, target])
        return f"{self._public_url}/r/{token}"

    def read_click(self, token: str, max_age: timedelta) -> TrackedLink:
        """Verify a click token no older than ``max_age``; raise ``InvalidLink`` otherwise."""
        payload = self._loads(self._clicks, token, max_age)
        if not (isinstance(payload, list) and len(payload) == 2 and all(isinstance(p, str) for p in payload)):
            raise InvalidLink("click token has an unexpected payload")
        return TrackedLink(message_id=payload[0], target=payload[1])

    def unsubscribe_url(self, customer_key: str, channel: str) -> str:
        """The ``{public_url}/u/{token}`` link that unsubscribes ``customer_key`` from ``channel``."""
        token = self._unsubscribes.dumps([customer_key, channel])
        return f"{self._public_url}/u/{token}"

    def read_unsubscribe(self, token: str) -> UnsubscribeToken:
        """Verify an unsubscribe token; it never expires because opting out must always work."""
        payload = self._loads(self._unsubscribes, token, None)
        if not (isinstance(payload, list) and len(payload) == 2 and all(isinstance(p, str) for p in payload)):
            raise InvalidLink("unsubscribe token has an unexpected payload")
        return UnsubscribeToken(customer_key=payload[0], channel=payload[1])

    def callback_url(self, message_id: str) -> str:
        """The ``{public_url}/c/{token}`` link by which a shopper accepts the callback offer ``message_id``."""
        return f"{self._public_url}/c/{self._callbacks.dumps(message_id)}"

    def read_callback(self, token: str, max_age: timedelta) -> str:
        """The message id of a callback-offer token; raise ``InvalidLink`` when forged or expired."""
        payload = self._loads(self._callbacks, token, max_age)
        if not isinstance(payload, str):
            raise InvalidLink("callback token has an unexpected payload")
        return payload

    def feedback_url(self, journey_id: str, answer: str) -> str:
        """The ``{public_url}/f/{token}`` link that records ``answer`` for ``journey_id``."""
        return f"{self._public_url}/f/{self._feedback.dumps([journey_id, answer])}"

    def read_feedback(self, token: str, max_age: timedelta) -> tuple[str, str]:
        """(journey id, answer) of a feedback token; raise ``InvalidLink`` when forged or expired."""
        payload = self._loads(self._feedback, token, max_age)
        if not (isinstance(payload, list) and len(payload) == 2 and all(isinstance(p, str) for p in payload)):
            raise InvalidLink("feedback token has an unexpected payload")
        return payload[0], payload[1]

    @property
    def public_url(self) -> str:
        """The service's public base URL, without a trailing slash."""
        return self._public_url

    @property
    def public_host(self) -> str | None:
        """The service's own host: its links (e.g. the callback page) may always be redirected to."""
        return urlsplit(self._public_url).hostname


def _loads(serializer: URLSafeTimedSerializer, token: str, max_age: timedelta | None) -> object:
    """Decode a token, mapping every itsdangerous failure to ``InvalidLink``."""
    seconds = None if max_age is None else int(max_age.total_seconds())
    try:
        return serializer.loads(token, max_age=seconds)
    except SignatureExpired as exc:
        raise InvalidLink(_EXPIRED) from exc
    except BadData as exc:
        raise InvalidLink("link signature is invalid") from exc
