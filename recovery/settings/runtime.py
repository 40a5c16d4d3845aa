"""``database``, ``scheduler``, ``retention``, ``render``, ``logging``: how the process runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import (
    Field,
)

from recovery.durations import Duration
from recovery.render.bounds import RenderLimits
from recovery.settings.base import Section


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///var/recovery.db"
    # PostgreSQL pool per process (unset: sized from channels.concurrency); every replica's pool counts
    # against max_connections (100 by default): the Helm chart sets these per role within that budget.
    pool_size: int | None = Field(default=None, ge=1, le=100)
    max_overflow: int | None = Field(default=None, ge=0, le=100)


class RetentionSettings(Section):
    """``recovery purge`` deletes carts (with their journeys and messages) older than this; none: keep."""

    days: int | None = Field(default=None, ge=1)


class SchedulerSettings(Section):
    poll_interval: Duration = timedelta(milliseconds=200)
    claim_batch: int = Field(default=100, ge=1)
    lease: Duration = timedelta(minutes=2)
    heartbeat_interval: Duration = timedelta(seconds=1)
    # Claims of a worker silent for this long are taken over (its `sending` messages are reconciled first).
    dead_after: Duration = timedelta(seconds=5)


class RenderSettings(Section):
    """Bounds of every message render (previews, save checks, sends): see docs/security.md."""

    deadline: Duration = Field(default=timedelta(seconds=2), description="one render stops past this")
    check_deadline: Duration = Field(default=timedelta(seconds=10), description="a save's full check")
    max_value: int = Field(default=100_000, ge=1_000, description="characters of any one value a template builds")
    max_output: int = Field(default=1_000_000, ge=10_000, description="characters one render writes")

    def limits(self) -> RenderLimits:
        """The sandbox's bounds from these settings."""
        return RenderLimits(
            deadline=self.deadline.total_seconds(),
            check_deadline=self.check_deadline.total_seconds(),
            max_value=self.max_value,
            max_output=self.max_output,
        )


class LoggingSettings(Section):
    """``format``: text or json; unset means JSON unless stderr is a terminal."""

    format: Literal["text", "json"] | None = None
