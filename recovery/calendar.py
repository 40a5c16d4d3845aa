"""One calendar for every "when may we contact the shopper": weekly windows, public holidays, closed days.

Pure: no I/O and no clock; ``now`` is an argument and results are aware UTC datetimes. Quiet hours
(``steps/guards.py``) and calling hours (``desk/hours.py``) both ask ``next_allowed`` for the next local
moment inside their weekly window that is not a closed day of the store: a public holiday of its
``country`` (the ``holidays`` package) or one of its ``closed_days``. Days are the shopper's local dates.
Window bounds are wall-clock times turned into UTC per day with ``zoneinfo``, so DST days are handled: a
bound inside a spring-forward gap lands just after the gap.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recovery.states import ChannelName

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS = {"mon-fri": "09:00-19:00", "sat": "10:00-17:00"}
# A year of holidays and closed days cannot close every day: a free day is always found within this.
MAX_LOOKAHEAD_DAYS = 400

Windows = Mapping[int, tuple[time, time]]  # weekday (0 = Monday) -> local (open, close)


class Weekday(StrEnum):
    """A day of the week as operators write it in the configuration."""

    MONDAY = "mon"
    TUESDAY = "tue"
    WEDNESDAY = "wed"
    THURSDAY = "thu"
    FRIDAY = "fri"
    SATURDAY = "sat"
    SUNDAY = "sun"

    @classmethod
    def of(cls, day: date) -> Weekday:
        """The weekday of a calendar date."""
        return list(cls)[day.weekday()]


@lru_cache(maxsize=256)
def public_holidays(country: str, year: int) -> frozenset[date]:
    """The public holidays of ``country`` (ISO 3166 alpha-2) in ``year``, from the ``holidays`` package."""
    return frozenset(holidays.country_holidays(country.upper(), years=year))


def known_country(country: str) -> bool:
    """True when the ``holidays`` package knows the public holidays of ``country``."""
    return country.upper() in holidays.list_supported_countries()


@dataclass(frozen=True, kw_only=True)
class ClosedDays:
    """Days without SMS or calls: the public holidays of ``country`` and the listed ``dates``."""

    country: str | None = None
    dates: frozenset[date] = frozenset()

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        return day in self.dates or (self.country is not None and day in public_holidays(self.country, day.year))

    def plus(self, dates: Collection[date]) -> ClosedDays:
        """These closed days and ``dates`` too."""
        return ClosedDays(country=self.country, dates=self.dates | frozenset(dates))


NO_CLOSED_DAYS = ClosedDays()


def zone_of(timezone: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The IANA zone ``timezone``, or ``fallback`` when it is missing or unknown."""
    for name in (timezone, fallback):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def at_local(day: date, moment: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time (gaps resolve to just after the clock change)."""
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)


def next_allowed(now: datetime, windows: Windows, zone: ZoneInfo, closed: ClosedDays = NO_CLOSED_DAYS) -> datetime:
    """``now`` (in UTC) if it is inside a window on an open local day, else the next window's opening."""
    if now.tzinfo is None:
        raise ValueError("next_allowed needs an aware datetime for now, got a naive one")
    now_utc = now.astimezone(UTC)
    today = now_utc.astimezone(zone).date()
    for offset in range(MAX_LOOKAHEAD_DAYS):
        day = today + timedelta(days=offset)
        window = windows.get(day.weekday())
        if window is None or day in closed:
            continue
        # Each bound is a wall-clock time of that day, turned into UTC on its own: a DST change
        # between now and that day moves the UTC instant, not the local time.
        opens, closes = at_local(day, window[0], zone), at_local(day, window[1], zone)
        if now_utc < opens:
            return opens
        if now_utc < closes:
            return now_utc
    raise ValueError(f"no allowed day within {MAX_LOOKAHEAD_DAYS} days: check the weekdays and closed days")


class QuietHoursPolicy(BaseModel):
    """When marketing messages may reach a shopper, in the shopper's local time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time = Field(default=time(8, 0), description="first allowed local time (inclusive)")
    end: time = Field(default=time(20, 0), description="end of the allowed window (exclusive)")
    weekdays: tuple[Weekday, ...] = Field(
        default=(
            Weekday.MONDAY,
            Weekday.TUESDAY,
            Weekday.WEDNESDAY,
            Weekday.THURSDAY,
            Weekday.FRIDAY,
            Weekday.SATURDAY,
        ),
        min_length=1,
    )
    holidays: tuple[date, ...] = Field(default=(), description="public holidays: no message all day")
    timezone: str = Field(default="UTC", description="the store's IANA timezone, for shoppers without one")
    channels: tuple[ChannelName, ...] = Field(
        default=(ChannelName.SMS, ChannelName.CALLBACK),
        description="channels the window applies to (email lands in an inbox and is read later)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA timezone: write e.g. Europe/Paris, America/New_York") from None
        return value

    @model_validator(mode="after")
    def _window_is_forward(self) -> Self:
        if self.start >= self.end:
            raise ValueError(f"quiet hours: start {self.start} must be before end {self.end} on the same day")
        return self

    def windows(self) -> dict[int, tuple[time, time]]:
        """The policy as weekly windows for ``next_allowed``."""
        return {list(Weekday).index(day): (self.start, self.end) for day in self.weekdays}


@dataclass(frozen=True, kw_only=True)
class CallingHours:
    """Opening and closing local time per weekday (0 = Monday; a missing day is closed), and each store's
    closed days (``closed["default"]`` for a store not listed)."""

    windows: Windows
    closed: Mapping[str, ClosedDays] = field(default_factory=dict)

    def closed_for(self, store: str | None) -> ClosedDays:
        """The closed days of ``store``: its own, else the default store's, else none."""
        return self.closed.get(store or "default") or self.closed.get("default") or NO_CLOSED_DAYS

    def for_store(self, store: str | None) -> CallingHours:
        """These hours with ``store``'s closed days as everyone's (for code that knows one shopper only)."""
        return CallingHours(windows=self.windows, closed={"default": self.closed_for(store)})


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
