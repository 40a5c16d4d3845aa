"""The desk's configuration as one value: calling hours, capacity, retries, claims and how tasks are shown."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from recovery.channels.requirements import unset_keys
from recovery.desk.hours import DEFAULT_HOURS, CallingHours, parse_hours
from recovery.desk.task_view import TaskViewSettings
from recovery.states import ChannelName
from recovery.stores import StoreDirectory, store_calling_hours

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
    # Channels an agent's link can go out on (a provider channel without its settings cannot).
    link_channels: frozenset[ChannelName] = frozenset({ChannelName.SMS, ChannelName.EMAIL})

    def for_store(self, store: str | None) -> DeskPolicy:
        """This policy with ``store``'s calendar (public holidays, closed days) as the calling hours' own."""
        return replace(self, hours=self.hours.for_store(store))


DEFAULT_POLICY = DeskPolicy()


def _link_channels(settings: Any) -> frozenset[ChannelName]:
    """SMS and email, less a provider channel whose settings are missing (its messages would only fail)."""
    wanted = (ChannelName.SMS, ChannelName.EMAIL)
    if settings.channels.transport != "providers":
        return frozenset(wanted)
    return frozenset(name for name in wanted if not unset_keys(settings, name))


def desk_policy(settings: Any) -> DeskPolicy:
    """From the whole ``Settings`` (its ``callbacks`` block, and ``stores`` when that block exists)."""
    callbacks = settings.callbacks
    return DeskPolicy(
        link_channels=_link_channels(settings),
        hours=store_calling_hours(settings),  # with each store's public holidays and closed days
        per_hour=callbacks.per_hour,
        retry_after=callbacks.retry_after,
        max_attempts=callbacks.max_attempts,
        claim_for=callbacks.claim_for,
        view=TaskViewSettings(
            sla=callbacks.sla, max_attempts=callbacks.max_attempts, stores=StoreDirectory.from_settings(settings)
        ),
    )
