"""Building the service from settings: which channel adapters and which composer."""

from __future__ import annotations

from recovery.channels.base import Channel, ChannelName
from recovery.channels.outbox import LocalOutboxChannel
from recovery.composer import PlainComposer
from recovery.service import Service
from recovery.settings import Settings


def build_channels(settings: Settings) -> dict[ChannelName, Channel]:
    """The channel adapters: the local outbox until the real providers are configured."""
    return {name: LocalOutboxChannel(settings.channels.outbox_dir, name) for name in ChannelName}


def build_service(settings: Settings) -> Service:
    """A ``Service`` wired from settings."""
    return Service(settings, channels=build_channels(settings), composer=PlainComposer())
