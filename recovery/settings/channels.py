"""``channels.*``: how messages leave (SMTP, Twilio or the outbox dry run), retries and pace."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
)

from recovery.durations import Duration
from recovery.settings.base import Section

TWILIO_API_BASE_URL = "https://api.twilio.com"


class EmailSettings(Section):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    sender: str = "shop@example.com"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: Duration = timedelta(seconds=10)
    # Sends per second handed to SMTP (none: unlimited); a relay with a quota gets a steady pace, not errors.
    max_per_second: float | None = Field(default=None, gt=0)
    # Emails handed to SMTP at once per scheduler: SMTP has no idempotency key, so a SIGKILL can leave at most
    # this many emails whose outcome is unknown (each is then sent again rather than lost).
    concurrency: int = Field(default=16, ge=1, le=1024)


class SmsSettings(Section):
    account_sid: str = ""
    auth_token: str = ""
    sender: str = ""
    api_base_url: str = TWILIO_API_BASE_URL
    max_segments: int = Field(default=3, ge=1, description="warn above this many segments")
    timeout: Duration = timedelta(seconds=10)
    # Twilio's messages-per-second for the sender (about 1 per long code, more for short codes and toll-free
    # numbers); none: unlimited. Callback offers, texted through the same sender, share this pace.
    max_per_second: float | None = Field(default=None, gt=0)
    # SMS handed to Twilio at once per scheduler (a crashed send is looked up by its idempotency key, never
    # sent twice, so this is only the provider's concurrency).
    concurrency: int = Field(default=64, ge=1, le=1024)


class RetrySettings(Section):
    """Transient provider failures: a few quick in-process tries, then durable retries with backoff."""

    in_process_attempts: int = Field(default=3, ge=1, le=10)
    base_delay: Duration = timedelta(seconds=30)
    max_delay: Duration = timedelta(hours=1)
    max_attempts: int = Field(default=8, ge=1, description="durable attempts before the message fails")
    max_age: Duration = timedelta(hours=24)


class ChannelsSettings(Section):
    # ``providers`` (the default) sends email over SMTP and SMS through Twilio; ``outbox`` is an explicit
    # dry run that writes every message to local JSONL files (var/outbox) and sends nothing.
    transport: Literal["outbox", "providers"] = "providers"
    email: EmailSettings = EmailSettings()
    sms: SmsSettings = SmsSettings()
    outbox_dir: Path = Path("var/outbox")
    retry: RetrySettings = RetrySettings()
    # Due steps fired at once per scheduler, every channel together (each waits mostly on its provider); also
    # sizes the database pool. ``email.concurrency`` and ``sms.concurrency`` cap each channel within it.
    concurrency: int = Field(default=64, ge=1, le=1024)
