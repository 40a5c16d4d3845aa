"""Calling hours: when an agent's task falls due, and which slots a shopper may pick, in their timezone."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from recovery.desk.hours import DEFAULT_HOURS, is_open, next_open, parse_hours, slots, zone_of

HOURS = parse_hours(DEFAULT_HOURS)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "timezone", "expected"),
    [
        # Wednesday 11:00 in Paris: open, call now.
        (utc(2026, 1, 7, 10), "Europe/Paris", utc(2026, 1, 7, 10)),
        # Wednesday 19:00 in Paris is closing time: Thursday 09:00 local.
        (utc(2026, 1, 7, 18), "Europe/Paris", utc(2026, 1, 8, 8)),
        # Thursday 09:00 sharp: open.
        (utc(2026, 1, 8, 8), "Europe/Paris", utc(2026, 1, 8, 8)),
        # Friday 07:00 local, before opening: 09:00 the same day.
        (utc(2026, 1, 9, 6), "Europe/Paris", utc(2026, 1, 9, 8)),
        # Friday 19:30 local: Saturday opens at 10:00.
        (utc(2026, 1, 9, 18, 30), "Europe/Paris", utc(2026, 1, 10, 9)),
        # Saturday 18:00 local: Sunday is closed, Monday 09:00.
        (utc(2026, 1, 10, 17), "Europe/Paris", utc(2026, 1, 12, 8)),
        # The weekend the clocks go forward (29 March 2026): Monday 09:00 is now UTC+2.
        (utc(2026, 3, 28, 17), "Europe/Paris", utc(2026, 3, 30, 7)),
        # The weekend the clocks go back (25 October 2026): Monday 09:00 is UTC+1 again.
        (utc(2026, 10, 24, 16), "Europe/Paris", utc(2026, 10, 26, 8)),
        # New York, Saturday evening before its own change (1 November 2026): Monday 09:00 EST.
        (utc(2026, 10, 31, 22), "America/New_York", utc(2026, 11, 2, 14)),
        # Tokyo, Monday 09:30 local (00:30 UTC): open.
        (utc(2026, 1, 5, 0, 30), "Asia/Tokyo", utc(2026, 1, 5, 0, 30)),
        # Sunday 23:00 UTC is Monday 08:00 in Tokyo: opens at 09:00 local.
        (utc(2026, 1, 4, 23), "Asia/Tokyo", utc(2026, 1, 5, 0)),
        # An unknown timezone falls back to UTC rather than failing.
        (utc(2026, 1, 7, 20), "Mars/Olympus", utc(2026, 1, 8, 9)),
        (utc(2026, 1, 7, 20), None, utc(2026, 1, 8, 9)),
    ],
)
def test_a_task_falls_due_at_the_next_moment_inside_calling_hours(
    now: datetime, timezone: str | None, expected: datetime
) -> None:
    """Inside the hours a task is due now; outside, at the next opening in the shopper's local time."""
    assert next_open(now, zone_of(timezone), HOURS) == expected


def test_an_opening_time_skipped_by_the_clock_change_opens_just_after_it() -> None:
    """02:30 does not exist in Paris on 29 March 2026: the window opens at 03:30 local (01:30 UTC)."""
    hours = parse_hours({"sun": "02:30-05:00"})
    assert next_open(utc(2026, 3, 29, 0), zone_of("Europe/Paris"), hours) == utc(2026, 3, 29, 1, 30)


def test_is_open_matches_the_window_edges() -> None:
    """Opening time is inside, closing time is outside."""
    paris = zone_of("Europe/Paris")
    assert is_open(utc(2026, 1, 7, 8), paris, HOURS)
    assert not is_open(utc(2026, 1, 7, 18), paris, HOURS)


def test_slots_cover_today_and_the_next_days_inside_the_hours_only() -> None:
    """Friday 17:50 in Paris: 18:30 today, Saturday 10:00-16:30, nothing on Sunday."""
    found = slots(utc(2026, 1, 9, 16, 50), zone_of("Europe/Paris"), HOURS)
    local = [moment.astimezone(zone_of("Europe/Paris")) for moment in found]
    assert local[0].strftime("%a %H:%M") == "Fri 18:30"
    assert [m.strftime("%a") for m in local].count("Sat") == 14
    assert local[-1].strftime("%a %H:%M") == "Sat 16:30"
    assert all(m.strftime("%a") != "Sun" for m in local)


def test_slots_on_the_night_clocks_go_back_follow_real_time() -> None:
    """01:00-04:00 local on 25 October 2026 lasts four real hours in Paris: eight half-hour slots."""
    hours = parse_hours({"sun": "01:00-04:00"})
    found = slots(utc(2026, 10, 24, 20), zone_of("Europe/Paris"), hours, days=2)
    assert len(found) == 8
    assert (found[0], found[-1]) == (utc(2026, 10, 24, 23), utc(2026, 10, 25, 2, 30))


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"mon-fri": "19:00-09:00"}, "closes before it opens"),
        ({"mon-fri": "9h-19h"}, "not a time range"),
        ({"monday": "09:00-19:00"}, "days are written mon"),
        ({"fri-mon": "09:00-19:00"}, "goes forward"),
        ({"mon-fri": "09:00-12:00", "fri": "14:00-18:00"}, "fri is given twice"),
        ({}, "no calling hours"),
    ],
)
def test_bad_calling_hours_are_refused_with_a_reason(spec: dict[str, str], reason: str) -> None:
    """A mistake in callbacks.hours names what is wrong."""
    with pytest.raises(ValueError, match=reason):
        parse_hours(spec)


def test_day_lists_and_ranges_are_read() -> None:
    """``mon,wed`` and ``sat-sun`` name the days they say."""
    hours = parse_hours({"mon,wed": "08:00-12:00", "sat-sun": "10:00-11:00"})
    assert sorted(hours.windows) == [0, 2, 5, 6]
    assert hours.windows[6] == (time(10), time(11))
