"""The desk's configuration as one value: calling hours, capacity, retries, claims and how tasks are shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from recovery.desk.hours import DEFAULT_HOURS, CallingHours, parse_hours
from recovery.desk.store_info import StoreDirectory
from recovery.desk.task_view import TaskViewSettings

DEFAULT_CALLING_HOURS = parse_hours(DEFAULT_HOURS)


@dataclass(frozen=True, kw_only=True)
class DeskPolicy:
    """``callbacks.*`` settings the desk's decisions read; the defaults are the contract's."""

    hours: CallingHours = DEFAULT_CALLING_HOURS
    per_hour: int | None = None  # None: no capacity limit
    retry_after: timedelta = timedelta(hours=2)
    max_attempts: int = 3
    claim_for: timedelta = timedelta(minutes=15)
    view: TaskViewSettings = field(default_factory=TaskViewSettings)


DEFAULT_POLICY = DeskPolicy()


def desk_policy(settings: Any) -> DeskPolicy:
    """From the whole ``Settings`` (its ``callbacks`` block, and ``stores`` when that block exists)."""
    callbacks = settings.callbacks
    return DeskPolicy(
        hours=callbacks.calling_hours(),
        per_hour=callbacks.per_hour,
        retry_after=callbacks.retry_after,
        max_attempts=callbacks.max_attempts,
        claim_for=callbacks.claim_for,
        view=TaskViewSettings(
            sla=callbacks.sla, max_attempts=callbacks.max_attempts, stores=StoreDirectory.from_settings(settings)
        ),
    )
