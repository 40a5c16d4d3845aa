"""``http.*``, ``security.*`` and ``ingest.*``: who may reach the service, and how it checks them."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    Field,
)

from recovery.durations import Duration
from recovery.errors import ConfigError
from recovery.settings.base import Section


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    # A client slower than this to send its request (head or body) is cut (issue 19).
    read_timeout: Duration = timedelta(seconds=30)


Role = Literal["agent", "marketer", "platform", "admin"]


class ApiToken(Section):
    """Who holds a token: the role, and the person's name shown in claims and version history."""

    role: Role
    name: str | None = None


def _token_entry(value: object) -> object:
    """Accept the short form ``token: role`` as well as ``token: {role, name}``."""
    return {"role": value} if isinstance(value, str) else value


class SecuritySettings(Section):
    link_secret: str | None = None
    # Rotation: links signed with the previous secret keep working until this time (none: until removed).
    previous_link_secret: str | None = None
    previous_link_secret_until: AwareDatetime | None = None
    link_hosts: list[str] | None = None
    # token -> ApiToken; the short form ``token: agent`` is normalised by ``_token_entry``
    api_tokens: dict[str, Annotated[ApiToken, BeforeValidator(_token_entry)]] = Field(default_factory=dict)

    def required_link_secret(self) -> str:
        """``link_secret``, or a ``ConfigError`` saying how to set it: links are signed and verified with it."""
        if not self.link_secret:
            raise ConfigError(
                "security.link_secret is not set (env RECOVERY_SECURITY__LINK_SECRET): it signs and verifies "
                "tracked and unsubscribe links; set a long random value (the same on every process)"
            )
        return self.link_secret


class WebhookSecret(Section):
    secret: str | None = None


class StripeWebhook(WebhookSecret):
    tolerance: Duration = timedelta(seconds=300)  # a signed timestamp further from now is refused (400)


class IngestSettings(Section):
    max_event_bytes: int = Field(default=1_000_000, ge=1024, description="larger events are dead-lettered")
    shopify: WebhookSecret = WebhookSecret()
    stripe: StripeWebhook = StripeWebhook()
    woocommerce: WebhookSecret = WebhookSecret()
