"""When agents call: ``callbacks.hours`` per weekday in the shopper's timezone, the next open moment, slots.

Pure: time is an argument, results are aware UTC datetimes. The weekly hours, the store's public holidays
and closed days are read by the one calendar (``recovery.calendar``); local times that do not exist (the hour
skipped when clocks go forward) land just after the change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from recovery.calendar import (
    DAY_NAMES,
    DEFAULT_HOURS,
    CallingHours,
    at_local,
    next_allowed,
    parse_hours,
    zone_of,
)

__all__ = ["DAY_NAMES", "DEFAULT_HOURS", "CallingHours", "is_open", "next_open", "parse_hours", "slots", "zone_of"]


def next_open(now: datetime, zone: ZoneInfo, hours: CallingHours, *, store: str | None = None) -> datetime:
    """``now`` when agents may call now, else the next opening, in UTC (never on ``store``'s closed days)."""
    return next_allowed(now, hours.windows, zone, hours.closed_for(store))


def is_open(moment: datetime, zone: ZoneInfo, hours: CallingHours, *, store: str | None = None) -> bool:
    """True when ``moment`` falls inside the calling hours."""
    return next_open(moment, zone, hours, store=store) == moment.astimezone(UTC)


def slots(
    now: datetime,
    zone: ZoneInfo,
    hours: CallingHours,
    *,
    days: int = 3,
    every: timedelta = timedelta(minutes=30),
    lead: timedelta = timedelta(minutes=15),
    store: str | None = None,
) -> list[datetime]:
    """Call-back times a shopper may pick: every ``every`` inside the hours, today and the next days."""
    earliest = now + lead
    local_today = now.astimezone(zone).date()
    closed = hours.closed_for(store)
    found: list[datetime] = []
    for offset in range(days):
        day = local_today + timedelta(days=offset)
        window = hours.windows.get(day.weekday())
        if window is None or day in closed:
            continue
        moment, end = at_local(day, window[0], zone), at_local(day, window[1], zone)
        while moment < end:
            if moment >= earliest:
                found.append(moment)
            moment += every
    return found
