"""The identity of one recovery message: the fields every record about a message shares, declared once.

A message is one step of one journey on one channel; its id is ``<journey_id>:<step>`` (the idempotency
key at the providers). ``OutgoingMessage`` (what a channel sends), ``NewTask`` (an agent's callback task),
``SentMessage`` (what attribution credits) and ``TrackedMessage`` (what a click or a receipt finds) extend
this record rather than repeat its fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from recovery.states import ChannelName


def message_id_for(journey_id: str, step: str) -> str:
    """The id of a journey step's message: one step sends one message, whatever its channel."""
    return f"{journey_id}:{step}"


@dataclass(frozen=True, kw_only=True)
class MessageIdentity:
    """Which message this is: its id, journey, cart, flow, step and channel."""

    message_id: str
    journey_id: str
    cart_id: str
    flow: str
    step: str
    channel: ChannelName

    @classmethod
    def for_step(cls, *, journey_id: str, cart_id: str, flow: str, step: str, channel: ChannelName) -> MessageIdentity:
        """The identity of ``step``'s message in journey ``journey_id``."""
        return MessageIdentity(
            message_id=message_id_for(journey_id, step),
            journey_id=journey_id,
            cart_id=cart_id,
            flow=flow,
            step=step,
            channel=channel,
        )

    @property
    def identity(self) -> MessageIdentity:
        """Just the identity, from this record or from any record that extends it."""
        return MessageIdentity(**{name: getattr(self, name) for name in IDENTITY_FIELDS})

    def identity_fields(self) -> dict[str, str]:
        """The identity as plain strings, for stored rows, events and dead letters."""
        return {name: str(getattr(self, name)) for name in IDENTITY_FIELDS}


IDENTITY_FIELDS = tuple(field.name for field in fields(MessageIdentity))
