"""The one calendar: next allowed local time for a weekly window, skipping public holidays and closed days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from recovery.calendar import ClosedDays, QuietHoursPolicy, next_allowed, parse_hours
from recovery.desk.hours import next_open, slots
from recovery.states import ChannelName
from recovery.steps.guards import GuardInput, GuardPolicy, Send, check_guards, next_allowed_time

PARIS = ZoneInfo("Europe/Paris")
BRUSSELS = ZoneInfo("Europe/Brussels")
QUIET = QuietHoursPolicy(timezone="Europe/Paris").windows()  # Mon-Sat 08:00-20:00
FR = ClosedDays(country="FR")
BE = ClosedDays(country="BE")


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


@pytest.mark.parametrize(
    ("name", "now", "closed", "zone", "expected"),
    [
        # France: 1 May 2026 is a Friday, the next open day is Saturday 2 May at 08:00.
        ("fr_labour_day", local(PARIS, 2026, 5, 1, 10), FR, PARIS, local(PARIS, 2026, 5, 2, 8)),
        # 14 July 2026 is a Tuesday: Wednesday 15 July at 08:00.
        ("fr_bastille_day", local(PARIS, 2026, 7, 14, 9), FR, PARIS, local(PARIS, 2026, 7, 15, 8)),
        # 25 December 2026 is a Friday: Saturday 26 (not a French holiday) at 08:00.
        ("fr_christmas", local(PARIS, 2026, 12, 25, 12), FR, PARIS, local(PARIS, 2026, 12, 26, 8)),
        # The evening before a holiday: the next morning is closed, so the day after.
        ("fr_eve_of_holiday", local(PARIS, 2026, 7, 13, 21), FR, PARIS, local(PARIS, 2026, 7, 15, 8)),
        # Belgium: 21 July 2026 (Tuesday) is the national day; 14 July is an ordinary day there.
        ("be_national_day", local(BRUSSELS, 2026, 7, 21, 10), BE, BRUSSELS, local(BRUSSELS, 2026, 7, 22, 8)),
        ("be_14_july_is_open", local(BRUSSELS, 2026, 7, 14, 10), BE, BRUSSELS, local(BRUSSELS, 2026, 7, 14, 10)),
        # A closed_days list: 24 and 26 December closed, Christmas a holiday, 27 a Sunday: Monday 28.
        (
            "closed_days_list",
            local(PARIS, 2026, 12, 24, 9),
            ClosedDays(country="FR", dates=frozenset({date(2026, 12, 24), date(2026, 12, 26)})),
            PARIS,
            local(PARIS, 2026, 12, 28, 8),
        ),
        # A closed day without a country: only the listed date.
        (
            "dates_only",
            local(PARIS, 2026, 5, 1, 10),
            ClosedDays(dates=frozenset({date(2026, 5, 1)})),
            PARIS,
            local(PARIS, 2026, 5, 2, 8),
        ),
        # An open ordinary day inside the window: now.
        ("open_now", local(PARIS, 2026, 5, 4, 10), FR, PARIS, local(PARIS, 2026, 5, 4, 10)),
        # DST: Saturday 28 March 2026 21:00 (UTC+1) → Monday 30 March 08:00 is 06:00 UTC (UTC+2).
        ("dst_spring", local(PARIS, 2026, 3, 28, 21), FR, PARIS, datetime(2026, 3, 30, 6, tzinfo=UTC)),
        # DST: Saturday 24 October 2026 21:00 (UTC+2) → Monday 26 October 08:00 is 07:00 UTC (UTC+1).
        ("dst_autumn", local(PARIS, 2026, 10, 24, 21), FR, PARIS, datetime(2026, 10, 26, 7, tzinfo=UTC)),
    ],
)
def test_next_allowed_skips_holidays_and_closed_days(
    name: str, now: datetime, closed: ClosedDays, zone: ZoneInfo, expected: datetime
) -> None:
    """No SMS or call on a public holiday of the store's country nor on its closed days, in local dates."""
    assert next_allowed(now, QUIET, zone, closed) == expected, name


def test_the_holiday_is_the_shoppers_local_date_not_utc() -> None:
    """30 April 23:30 UTC is already 1 May in Paris: closed, though the UTC date is an ordinary day."""
    now = datetime(2026, 4, 30, 23, 30, tzinfo=UTC)
    assert next_allowed(now, QUIET, PARIS, FR) == local(PARIS, 2026, 5, 2, 8)


def test_quiet_hours_hold_an_sms_on_a_holiday_but_not_an_email() -> None:
    """The guards defer an SMS on 14 July to the 15th; an email on 14 July goes at once."""
    now = local(PARIS, 2026, 7, 14, 11)
    policy = GuardPolicy(quiet_hours=QuietHoursPolicy(timezone="Europe/Paris"))
    sms = check_guards(GuardInput(channel=ChannelName.SMS, consent=True, closed=FR), policy, now)
    email = check_guards(GuardInput(channel=ChannelName.EMAIL, consent=True, closed=FR), policy, now)
    assert getattr(sms, "until", None) == local(PARIS, 2026, 7, 15, 8)
    assert isinstance(email, Send)


def test_a_shopper_without_timezone_is_read_in_the_stores() -> None:
    """A store in Brussels, a shopper without zone: 07:30 UTC on a Monday is 09:30 there, allowed."""
    quiet = QuietHoursPolicy()  # UTC by default
    now = datetime(2026, 5, 4, 7, 30, tzinfo=UTC)
    policy = GuardPolicy(quiet_hours=quiet)
    request = GuardInput(channel=ChannelName.SMS, consent=True, store_timezone="Europe/Brussels")
    assert isinstance(check_guards(request, policy, now), Send)
    without = GuardInput(channel=ChannelName.SMS, consent=True)  # read in UTC: 07:30 is before 08:00
    assert not isinstance(check_guards(without, policy, now), Send)
    assert next_allowed_time(datetime(2026, 5, 4, 5, 30, tzinfo=UTC), quiet, "Europe/Paris") == datetime(
        2026, 5, 4, 6, tzinfo=UTC
    )


def test_agents_never_call_on_the_stores_holidays() -> None:
    """Calling hours use the same calendar: a French store's task on 14 July is due on the 15th at 09:00."""
    hours = parse_hours({"mon-fri": "09:00-19:00", "sat": "10:00-17:00"})
    hours = type(hours)(windows=hours.windows, closed={"default": ClosedDays(), "fr": FR})
    now = local(PARIS, 2026, 7, 14, 10)
    assert next_open(now, PARIS, hours, store="fr") == local(PARIS, 2026, 7, 15, 9)
    assert next_open(now, PARIS, hours, store="us") == now
    offered = slots(now, PARIS, hours, days=2, store="fr")
    assert offered and all(moment.astimezone(PARIS).date() == date(2026, 7, 15) for moment in offered)
    assert offered[0].astimezone(PARIS).time() == time(9, 0)
