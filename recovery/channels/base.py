"""The one small interface every channel implements, and the records that cross it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from recovery.messages import MessageIdentity
from recovery.states import ChannelName, StepMode

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
    # For the callback channel: how the step reaches the shopper, whose task it is, why an agent would call
    # (a ``desk.queue.TaskReason`` value).
    mode: StepMode = StepMode.OFFER
    customer_key: str = ""
    task_reason: str = "flow"
    variant: str | None = None  # the A/B variant of the step, carried on ``message.sent``
    # The store's voice, resolved once per journey: the email From (``Name <address>``) or the SMS sender,
    # and the email Reply-To; None: the channel's configured sender.
    sender: str | None = None
    reply_to: str | None = None

    def to_content(self) -> dict[str, Any]:
        """The JSON kept on the message row while it is ``sending``: exactly what the provider was handed.

        The callback fields travel in a ``metadata`` object, the shape every earlier version wrote and reads
        (a rolling upgrade reconciles either way).
        """
        values = asdict(self)
        legacy = {"mode": str(values.pop("mode")), "customer_key": values.pop("customer_key")}
        legacy["reason"] = values.pop("task_reason")
        variant = values.pop("variant")
        if variant is not None:
            legacy["variant"] = variant
        # Added fields unset are left out, so a row reads the same to a version that does not know them.
        kept = {key: value for key, value in values.items() if value is not None or key not in _OPTIONAL_NEW}
        return {**kept, "channel": self.channel.value, "metadata": legacy}

    @classmethod
    def from_content(cls, content: Mapping[str, Any]) -> OutgoingMessage:
        """The message back from its stored ``content``, to reconcile it with the provider after a crash.

        Rows written by any earlier version hold the same flat JSON; keys this version does not know
        (written by a newer one during a rolling upgrade) are left out rather than refused.
        """
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in content.items() if key in known}
        legacy = content.get("metadata") or {}
        typed = {
            "mode": StepMode(legacy.get("mode", values.get("mode", StepMode.OFFER))),
            "customer_key": legacy.get("customer_key", values.get("customer_key", "")),
            "task_reason": legacy.get("reason", values.get("task_reason", "flow")),
            "variant": values.get("variant", legacy.get("variant")),
        }
        return cls(**{**values, **typed, "channel": ChannelName(content["channel"])})


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
