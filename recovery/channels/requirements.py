"""Which provider settings each flow step needs, and where each channel sends; pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from recovery.rules import Flows
from recovery.settings import Settings, env_var
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


@dataclass(frozen=True, kw_only=True)
class MissingSetting:
    """A provider setting an enabled step needs and does not have; where it is, for a line number."""

    flow_index: int
    step_index: int
    field: str  # "channel" or "fallback"
    message: str


def missing_provider_settings(settings: Settings, flows: Flows) -> list[MissingSetting]:
    """One per enabled step whose channel (or fallback) lacks a provider setting, naming flow, step, key and env."""
    if settings.channels.transport != "providers":
        return []  # a dry run writes local files: nothing to configure
    problems: list[MissingSetting] = []
    for fi, flow in enumerate(flows.flows):
        if not flow.enabled:
            continue
        for si, step in enumerate(flow.steps):
            for field, channel in [("channel", step.channel), ("fallback", step.fallback)]:
                provider = needed_provider(channel, step.mode) if channel is not None else None
                for key in unset_keys(settings, provider) if provider is not None else []:
                    message = (
                        f"flow {flow.name!r}: step {step.name!r} sends by {channel} but {key} "
                        f"(env {env_var(key)}) is not set"
                    )
                    problems.append(MissingSetting(flow_index=fi, step_index=si, field=field, message=message))
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
