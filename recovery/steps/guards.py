"""Whether a due step may be sent now: holdout, consent, suppression, frequency cap, quiet hours.

Pure: no I/O and no clock; the caller passes ``now`` and what it read from the store. Checks run in a
fixed order and the first that fails decides, so the reported reason is stable:

1. holdout      → ``Skip(holdout)`` (the journey is in the control group, drawn once at its start
                  with ``in_holdout``, re-exported here from ``recovery.journeys.holdout``)
2. consent      → ``Skip(no_consent)`` unless consent for *this* channel is ``True``; unknown (``None``)
                  is no consent, because an abandoned cart is not a purchase and the CNIL "existing
                  customer" exception does not apply
3. suppression  → ``Skip(suppressed)`` when the caller sets ``suppressed``; the dispatcher never does:
                  opt-outs (unsubscribe, STOP, Twilio 21610) are consent-ledger entries, so a suppressed
                  address reaches the guards as consent ``False`` and stops at check 2
4. internal     → ``Send`` for an internal task (a direct callback for the agents): it contacts nobody
                  yet, so neither the frequency cap nor quiet hours apply to it
5. frequency    → ``Skip(frequency_cap)`` when the customer already got ``frequency_cap`` messages
                  (any flow, any channel, agent callbacks included) within ``frequency_window``
6. quiet hours  → ``Defer(until)`` to the next allowed local time, for the channels the store's
                  quiet-hours policy lists (SMS and callbacks by default); a step is never dropped for it

Quiet hours are evaluated in the shopper's IANA timezone, falling back to the store's when it is
missing or unknown. Window bounds are wall-clock times, converted to UTC per day with ``zoneinfo``,
so DST days are handled: a start inside a spring-forward gap lands just after the gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recovery.durations import Duration
from recovery.states import ChannelName, DeferReason, SkipReason

__all__ = [
    "Defer",
    "GuardInput",
    "GuardPolicy",
    "QuietHoursPolicy",
    "Send",
    "Skip",
    "Verdict",
    "Weekday",
    "check_guards",
    "next_allowed_time",
]

# A holiday list covers at most a year of closed days, so a free day is always found within this.
_MAX_LOOKAHEAD_DAYS = 400


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


@dataclass(frozen=True, kw_only=True)
class Send:
    """The step may be sent now."""


@dataclass(frozen=True, kw_only=True)
class Defer:
    """The step must wait until ``until`` (UTC), then be checked again."""

    until: datetime
    reason: DeferReason = DeferReason.QUIET_HOURS


@dataclass(frozen=True, kw_only=True)
class Skip:
    """The step must not be sent."""

    reason: SkipReason


Verdict = Send | Defer | Skip


@dataclass(frozen=True, kw_only=True)
class GuardInput:
    """What the guards need to know about one due step and its customer."""

    channel: ChannelName
    consent: bool | None
    suppressed: bool = False
    timezone: str | None = None
    store: str = "default"
    recent_sends: tuple[datetime, ...] = ()
    holdout: bool = False
    # An internal task (a direct callback for the agents) contacts nobody yet: no cap, no quiet hours.
    internal: bool = False


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
        if _zone(value) is None:
            raise ValueError(f"{value!r} is not an IANA timezone: write e.g. Europe/Paris, America/New_York")
        return value

    @model_validator(mode="after")
    def _window_is_forward(self) -> Self:
        if self.start >= self.end:
            raise ValueError(f"quiet hours: start {self.start} must be before end {self.end} on the same day")
        return self


class GuardPolicy(BaseModel):
    """Every guard setting; ``stores`` overrides the quiet-hours policy for a named store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quiet_hours: QuietHoursPolicy = QuietHoursPolicy()
    stores: dict[str, QuietHoursPolicy] = {}
    frequency_cap: int = Field(default=2, ge=0, description="messages per window; 0 disables the cap")
    frequency_window: Duration = timedelta(hours=24)

    def quiet_hours_for(self, store: str) -> QuietHoursPolicy:
        """The quiet-hours policy of ``store``, or the default one."""
        return self.stores.get(store, self.quiet_hours)


def check_guards(request: GuardInput, policy: GuardPolicy, now: datetime) -> Verdict:
    """Decide whether the step may be sent at ``now`` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("check_guards needs an aware datetime for now, got a naive one")
    if request.holdout:
        return Skip(reason=SkipReason.HOLDOUT)
    if request.consent is not True:
        return Skip(reason=SkipReason.NO_CONSENT)
    if request.suppressed:
        return Skip(reason=SkipReason.SUPPRESSED)
    if request.internal:
        return Send()
    if _over_cap(request.recent_sends, policy, now):
        return Skip(reason=SkipReason.FREQUENCY_CAP)
    quiet = policy.quiet_hours_for(request.store)
    if request.channel not in quiet.channels:
        return Send()
    until = next_allowed_time(now, quiet, request.timezone)
    return Send() if until == now else Defer(until=until)


def next_allowed_time(now: datetime, quiet: QuietHoursPolicy, timezone: str | None) -> datetime:
    """``now`` if it is inside the allowed window, else the next window start, in UTC."""
    zone = (_zone(timezone) if timezone else None) or ZoneInfo(quiet.timezone)
    now_utc = now.astimezone(UTC)
    today = now_utc.astimezone(zone).date()
    closed = set(quiet.holidays)
    for offset in range(_MAX_LOOKAHEAD_DAYS):
        day = today + timedelta(days=offset)
        if Weekday.of(day) not in quiet.weekdays or day in closed:
            continue
        # Each bound is a wall-clock time of that day, turned into UTC on its own: a DST change
        # between now and that day moves the UTC instant, not the local time.
        opens = datetime.combine(day, quiet.start, tzinfo=zone).astimezone(UTC)
        closes = datetime.combine(day, quiet.end, tzinfo=zone).astimezone(UTC)
        if now_utc < opens:
            return opens
        if now_utc < closes:
            return now
    raise ValueError(f"no allowed send day within {_MAX_LOOKAHEAD_DAYS} days: check weekdays and holidays")


def _over_cap(recent_sends: tuple[datetime, ...], policy: GuardPolicy, now: datetime) -> bool:
    if policy.frequency_cap == 0:
        return False
    since = now - policy.frequency_window
    in_window = sum(1 for sent in recent_sends if since < sent <= now)
    return in_window >= policy.frequency_cap


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
