"""``abandonment``, ``guards``, ``offers``, ``attribution``, ``callbacks``: the business rules' knobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from recovery.calendar import DEFAULT_HOURS, CallingHours, QuietHoursPolicy, parse_hours
from recovery.durations import Duration
from recovery.settings.base import Section


class AbandonmentSettings(Section):
    idle_after: Duration = timedelta(minutes=30)


class GuardsSettings(Section):
    holdout_percent: float = Field(default=0, ge=0, le=100)
    holdout_salt: str = "cart-recovery-holdout"
    frequency_cap: int = Field(default=2, ge=0)
    frequency_window: Duration = timedelta(hours=24)
    quiet_hours: QuietHoursPolicy = QuietHoursPolicy()
    stores: dict[str, QuietHoursPolicy] = Field(default_factory=dict)


class OffersSettings(Section):
    """Discount codes: where to register them in the shop before a message carries one (optional)."""

    register_url: str | None = None
    # Signs each registration (HMAC-SHA256): its own secret, shared with the shop; never the link secret,
    # from which the link, session and address keys are derived.
    register_secret: str | None = None
    timeout: Duration = timedelta(seconds=10)


class AttributionSettings(Section):
    """How an order is credited to a message (see README "Attribution")."""

    model: Literal["last_click", "last_send"] = "last_click"
    click_window: Duration = timedelta(days=5)
    send_window: Duration = timedelta(hours=24)


class CallbacksSettings(Section):
    """The agents' desk: calling hours, claims, SLA and the optional helpdesk webhook."""

    hours: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_HOURS))
    claim_for: Duration = timedelta(minutes=15)
    sla: Duration = timedelta(minutes=15)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_attempts: int = Field(default=8, ge=1, description="tries before a task's webhook is given up")
    # Retries and capacity (issue 22): a no_answer reopens after retry_after, until max_attempts completions;
    # per_hour caps the calls due in one clock hour (unset: no limit).
    retry_after: Duration = timedelta(hours=2)
    max_attempts: int = Field(default=3, ge=1)
    per_hour: int | None = Field(default=None, ge=1)

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str]) -> dict[str, str]:
        parse_hours(value)  # raises ValueError naming the bad entry
        return value

    def calling_hours(self) -> CallingHours:
        """The parsed calling hours."""
        return parse_hours(self.hours)
