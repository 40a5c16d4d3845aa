"""A channel whose provider settings are missing: every message fails for good, with the keys to set."""

from __future__ import annotations

from recovery.channels.base import Delivery, OutgoingMessage
from recovery.errors import PermanentError
from recovery.states import ChannelName


class UnconfiguredChannel:
    """Stands in for SMTP or Twilio when their settings are missing, so the other channels keep working."""

    def __init__(self, name: ChannelName, missing: list[str]) -> None:
        self.name = name
        self._reason = f"channel {name.value} is not configured: set {', '.join(missing)}"

    async def send(self, message: OutgoingMessage) -> Delivery:
        """Never sends: a permanent failure naming the missing settings (no retry, a recorded reason)."""
        raise PermanentError(self._reason, code="channel_not_configured")

    async def lookup(self, message: OutgoingMessage) -> Delivery | None:
        """Nothing was ever handed to a provider."""
        return None

    async def aclose(self) -> None:
        """Nothing to close."""
