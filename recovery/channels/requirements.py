"""Which provider settings each flow step needs, and where each channel sends; pure, no I/O."""

from __future__ import annotations

from recovery.rules import Flows
from recovery.settings import Settings
from recovery.states import ChannelName, StepMode

# The keys a channel cannot send without (the callback channel's offers go out by SMS).
_REQUIRED = {
    ChannelName.EMAIL: ("channels.email.smtp_host", "channels.email.sender"),
    ChannelName.SMS: ("channels.sms.account_sid", "channels.sms.auth_token", "channels.sms.sender"),
}


def _value(settings: Settings, key: str) -> object:
    current: object = settings
    for part in key.split("."):
        current = getattr(current, part)
    return current


def needed_provider(channel: ChannelName, mode: str) -> ChannelName | None:
    """The provider channel a step's messages go through (None: a direct callback needs no provider)."""
    if channel == ChannelName.CALLBACK:
        return None if mode == StepMode.DIRECT else ChannelName.SMS
    return channel


def unset_keys(settings: Settings, provider: ChannelName) -> list[str]:
    """The required settings of ``provider`` (email or sms) that are empty."""
    return [key for key in _REQUIRED[provider] if not _value(settings, key)]


def missing_channel_settings(settings: Settings, flows: Flows) -> list[str]:
    """One line per enabled step whose channel (or fallback) lacks a provider setting, naming flow/step/key."""
    if settings.channels.transport != "providers":
        return []  # a dry run writes local files: nothing to configure
    problems: list[str] = []
    for flow in flows.flows:
        if not flow.enabled:
            continue
        for step in flow.steps:
            for channel in [step.channel] + ([step.fallback] if step.fallback else []):
                provider = needed_provider(channel, step.mode)
                if provider is None:
                    continue
                for key in unset_keys(settings, provider):
                    env = "RECOVERY_" + "__".join(part.upper() for part in key.split("."))
                    problems.append(
                        f"flow {flow.name!r}: step {step.name!r} sends by {channel.value} but {key} "
                        f"(env {env}) is not set"
                    )
    return problems


def channel_destinations(settings: Settings) -> dict[str, str]:
    """Where each channel sends, for the start-up log: hosts and API bases, never credentials."""
    channels = settings.channels
    if channels.transport == "outbox":
        where = f"local outbox files in {channels.outbox_dir} (dry run: nothing is sent)"
        return {"email": where, "sms": where, "callback": where}
    return {
        "email": f"SMTP server {channels.email.smtp_host}:{channels.email.smtp_port}"
        + (" (STARTTLS)" if channels.email.starttls else ""),
        "sms": f"Twilio API at {channels.sms.api_base_url}",
        "callback": "agent tasks in the database; offers by SMS through Twilio",
    }
