"""The one small interface every channel implements, and the records that cross it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from recovery.messages import MessageIdentity
from recovery.states import ChannelName

_OPTIONAL_NEW = frozenset({"sender", "reply_to"})


@dataclass(frozen=True, kw_only=True)
class OutgoingMessage(MessageIdentity):
    """A rendered message ready for a provider. ``message_id`` is the idempotency key (journey + step)."""

    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    unsubscribe_url: str | None = None
    locale: str = "en"
    store: str = "default"
    # The store's voice, resolved once per journey: the email From (``Name <address>``) or the SMS sender,
    # and the email Reply-To; None: the channel's configured sender.
    sender: str | None = None
    reply_to: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def to_content(self) -> dict[str, Any]:
        """The JSON kept on the message row while it is ``sending``: exactly what the provider was handed."""
        content = {**asdict(self), "channel": self.channel.value}
        # Added fields unset are left out, so a row reads the same to a version that does not know them.
        return {key: value for key, value in content.items() if value is not None or key not in _OPTIONAL_NEW}

    @classmethod
    def from_content(cls, content: Mapping[str, Any]) -> OutgoingMessage:
        """The message back from its stored ``content``, to reconcile it with the provider after a crash.

        Rows written by any earlier version hold the same flat JSON; keys this version does not know
        (written by a newer one during a rolling upgrade) are left out rather than refused.
        """
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in content.items() if key in known}
        return cls(**{**values, "channel": ChannelName(content["channel"])})


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
