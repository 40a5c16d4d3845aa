"""Team capacity: ``callbacks.per_hour`` calls per clock hour, direct tasks and booked slots alike.

Pure: the tasks already due per hour are passed in as counts keyed by the hour's start (UTC).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from recovery.desk.hours import CallingHours, next_open

HOUR = timedelta(hours=1)
_HORIZON_HOURS = 24 * 31  # a month of hours: beyond that, the team is full and the task keeps its time


def hour_of(moment: datetime) -> datetime:
    """The start of the clock hour holding ``moment``, in UTC."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def per_hour_counts(due_times: Iterable[datetime]) -> Counter[datetime]:
    """How many tasks fall due in each clock hour."""
    return Counter(hour_of(moment) for moment in due_times)


def has_room(moment: datetime, counts: Mapping[datetime, int], per_hour: int | None) -> bool:
    """True when the hour of ``moment`` holds fewer than ``per_hour`` tasks (no limit: always)."""
    return per_hour is None or counts.get(hour_of(moment), 0) < per_hour


def plan_due(
    earliest: datetime,
    zone: ZoneInfo,
    hours: CallingHours,
    counts: Mapping[datetime, int],
    per_hour: int | None,
) -> datetime:
    """The first time from ``earliest`` inside the calling hours whose clock hour still has room."""
    candidate = next_open(earliest, zone, hours)
    if per_hour is None:
        return candidate
    first = candidate
    for _ in range(_HORIZON_HOURS):
        if has_room(candidate, counts, per_hour):
            return candidate
        candidate = next_open(hour_of(candidate) + HOUR, zone, hours)
    return first  # every hour of the horizon is full: better late in the queue than never


def slots_with_room(slots: Iterable[datetime], counts: Mapping[datetime, int], per_hour: int | None) -> list[datetime]:
    """The slot picker's times whose hour can still take a call."""
    return [slot for slot in slots if has_room(slot, counts, per_hour)]
