"""When agents call: ``callbacks.hours`` per weekday in the shopper's timezone, the next open moment, slots.

Pure: time is an argument, results are aware UTC datetimes. Local times that do not exist (the hour skipped
when clocks go forward) are read with the offset before the change, i.e. they land just after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS = {"mon-fri": "09:00-19:00", "sat": "10:00-17:00"}


@dataclass(frozen=True, kw_only=True)
class CallingHours:
    """Opening and closing local time per weekday (0 = Monday); a missing day is closed."""

    windows: Mapping[int, tuple[time, time]]


def _days(key: str) -> list[int]:
    """``mon-fri`` / ``sat`` / ``mon,wed`` as weekday numbers."""
    days: list[int] = []
    for part in key.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(f"{key!r}: days are written mon, tue, … sun, or a range such as mon-fri")
        start, end = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
        if end < start:
            raise ValueError(f"{key!r}: a range goes forward in the week (mon-fri, not fri-mon)")
        days.extend(range(start, end + 1))
    return days


def _window(key: str, value: str) -> tuple[time, time]:
    """``09:00-19:00`` as (open, close); close must be later the same day."""
    opens, _, closes = value.partition("-")
    try:
        start, end = time.fromisoformat(opens.strip()), time.fromisoformat(closes.strip())
    except ValueError as exc:
        raise ValueError(f"{key}: {value!r} is not a time range such as 09:00-19:00") from exc
    if end <= start:
        raise ValueError(f"{key}: {value!r} closes before it opens")
    return start, end


def parse_hours(spec: Mapping[str, str]) -> CallingHours:
    """Read ``{"mon-fri": "09:00-19:00", "sat": "10:00-17:00"}``; raise ``ValueError`` with the reason."""
    windows: dict[int, tuple[time, time]] = {}
    for key, value in spec.items():
        window = _window(key, value)
        for day in _days(key):
            if day in windows:
                raise ValueError(f"{key!r}: {DAY_NAMES[day]} is given twice")
            windows[day] = window
    if not windows:
        raise ValueError("no calling hours on any day: agents could never call")
    return CallingHours(windows=windows)


def zone_of(timezone: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The shopper's IANA zone, or ``fallback`` when unknown or missing."""
    try:
        return ZoneInfo(timezone) if timezone else ZoneInfo(fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time (gaps resolve to just after the clock change)."""
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)


def next_open(now: datetime, zone: ZoneInfo, hours: CallingHours) -> datetime:
    """``now`` when agents may call now, else the next opening, in UTC."""
    local_today = now.astimezone(zone).date()
    for offset in range(8):
        day = local_today + timedelta(days=offset)
        window = hours.windows.get(day.weekday())
        if window is None:
            continue
        start, end = _at(day, window[0], zone), _at(day, window[1], zone)
        if start <= now < end:
            return now.astimezone(UTC)
        if now < start:
            return start
    raise AssertionError("parse_hours guarantees one open day a week")


def is_open(moment: datetime, zone: ZoneInfo, hours: CallingHours) -> bool:
    """True when ``moment`` falls inside the calling hours."""
    return next_open(moment, zone, hours) == moment.astimezone(UTC)


def slots(
    now: datetime,
    zone: ZoneInfo,
    hours: CallingHours,
    *,
    days: int = 3,
    every: timedelta = timedelta(minutes=30),
    lead: timedelta = timedelta(minutes=15),
) -> list[datetime]:
    """Call-back times a shopper may pick: every ``every`` inside the hours, today and the next days."""
    earliest = now + lead
    local_today = now.astimezone(zone).date()
    found: list[datetime] = []
    for offset in range(days):
        day = local_today + timedelta(days=offset)
        window = hours.windows.get(day.weekday())
        if window is None:
            continue
        moment, end = _at(day, window[0], zone), _at(day, window[1], zone)
        while moment < end:
            if moment >= earliest:
                found.append(moment)
            moment += every
    return found
