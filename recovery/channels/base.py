"""The one small interface every channel implements, and the records that cross it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from recovery.states import ChannelName


@dataclass(frozen=True, kw_only=True)
class OutgoingMessage:
    """A rendered message ready for a provider. ``message_id`` is the idempotency key (journey + step)."""

    message_id: str
    journey_id: str
    cart_id: str
    flow: str
    step: str
    channel: ChannelName
    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    unsubscribe_url: str | None = None
    locale: str = "en"
    store: str = "default"
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What the provider answered: its own id for the message and channel-specific facts."""

    provider_id: str | None
    detail: dict[str, str | int] = field(default_factory=dict)


class Channel(Protocol):
    """Sends one message; maps provider failures to ``TransientError`` / ``PermanentError``.

    ``lookup`` is used after a crash to reconcile a message left in ``sending``: it returns the
    delivery if the provider already has the message, ``None`` if it surely does not, and raises
    ``OutcomeUnknownError`` when it cannot tell.
    """

    name: ChannelName

    async def send(self, message: OutgoingMessage) -> Delivery: ...

    async def lookup(self, message: OutgoingMessage) -> Delivery | None: ...

    async def aclose(self) -> None: ...
