"""Building the service from settings: which channel adapters and which composer."""

from __future__ import annotations

from recovery.app.components import link_signer
from recovery.app.roles import Role
from recovery.app.service import Service
from recovery.channels.base import Channel
from recovery.channels.email import EmailChannel, EmailConfig
from recovery.channels.file import LocalOutboxChannel
from recovery.channels.requirements import unset_keys
from recovery.channels.sms import SmsChannel, SmsConfig
from recovery.channels.unconfigured import UnconfiguredChannel
from recovery.ops.worker_slot import WorkerSlot
from recovery.render.bounds import configure as configure_render
from recovery.render.composer import TemplateComposer
from recovery.render.templates import load_templates
from recovery.settings import Settings
from recovery.states import ChannelName


def build_channels(settings: Settings) -> dict[ChannelName, Channel]:
    """Email and SMS adapters: local JSONL outboxes, or SMTP and Twilio when ``channels.transport`` is providers.

    The callback channel is built by the service: it needs the database for agent tasks.
    """
    outbox_dir = settings.channels.outbox_dir
    channels: dict[ChannelName, Channel] = {
        name: LocalOutboxChannel(outbox_dir, name) for name in (ChannelName.EMAIL, ChannelName.SMS)
    }
    if settings.channels.transport == "providers":
        for name in (ChannelName.EMAIL, ChannelName.SMS):
            missing = unset_keys(settings, name)
            # `recovery run` warned at start; an unconfigured channel's messages fail with the keys to set.
            channels[name] = UnconfiguredChannel(name, missing) if missing else _provider(settings, name)
    return channels


def _provider(settings: Settings, name: ChannelName) -> Channel:
    """The SMTP or Twilio adapter of ``name``."""
    email, sms = settings.channels.email, settings.channels.sms
    if name == ChannelName.EMAIL:
        return EmailChannel(
            EmailConfig(
                host=email.smtp_host,
                port=email.smtp_port,
                sender=email.sender,
                username=email.username,
                password=email.password,
                starttls=email.starttls,
                timeout_s=email.timeout.total_seconds(),
            )
        )
    return SmsChannel(
        SmsConfig(
            account_sid=sms.account_sid,
            auth_token=sms.auth_token,
            sender=sms.sender,
            status_callback_url=settings.http.public_url.rstrip("/") + "/webhooks/twilio/status",
            api_base_url=sms.api_base_url,
            timeout_s=sms.timeout.total_seconds(),
            max_segments=sms.max_segments,
        )
    )


def build_composer(settings: Settings) -> TemplateComposer:
    """Templates from ``templates_dir`` with links signed by ``security.link_secret`` (required)."""
    signer = link_signer(settings)  # the secret is checked before the templates are read
    configure_render(settings.render.limits())  # every send renders within these bounds
    return TemplateComposer(templates=load_templates(settings.templates_dir), signer=signer)


def build_service(settings: Settings, *, role: Role = "all", worker: WorkerSlot | None = None) -> Service:
    """A ``Service`` wired from settings, running the parts of ``role`` (as ``worker`` of a group, if given)."""
    channels, composer = build_channels(settings), build_composer(settings)
    return Service(settings, channels=channels, composer=composer, role=role, worker=worker)
