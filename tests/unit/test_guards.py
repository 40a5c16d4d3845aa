"""Guards: consent, suppression, frequency cap, quiet hours and holdout, as pure decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from recovery.journeys.holdout import in_holdout
from recovery.states import ChannelName, DeferReason, SkipReason
from recovery.steps.guards import (
    Defer,
    GuardInput,
    GuardPolicy,
    QuietHoursPolicy,
    Send,
    Skip,
    Weekday,
    check_guards,
)

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"
POLICY = GuardPolicy()
# Wednesday 11 June 2025, 12:00 UTC: 14:00 in Paris, 08:00 in New York: inside every default window.
MIDWEEK_NOON = datetime(2025, 6, 11, 12, 0, tzinfo=UTC)


BASE = GuardInput(channel=ChannelName.SMS, consent=True, timezone=PARIS)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC datetime from its parts."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def sms(**overrides: Any) -> GuardInput:
    """A consenting, unsuppressed SMS request for a shopper in Paris, overridable field by field."""
    return replace(BASE, **overrides)


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        (True, Send()),
        (False, Skip(reason=SkipReason.NO_CONSENT)),
        (None, Skip(reason=SkipReason.NO_CONSENT)),
    ],
    ids=["given", "refused", "unknown"],
)
def test_only_explicit_consent_lets_a_message_through(consent: bool | None, expected: object) -> None:
    """Unknown consent counts as no consent: an abandoned cart is not a purchase (CNIL)."""
    assert check_guards(sms(consent=consent), POLICY, MIDWEEK_NOON) == expected


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (sms(holdout=True, consent=None, suppressed=True), SkipReason.HOLDOUT),
        (sms(consent=False, suppressed=True), SkipReason.NO_CONSENT),
        (
            sms(suppressed=True, recent_sends=(MIDWEEK_NOON, MIDWEEK_NOON)),
            SkipReason.SUPPRESSED,
        ),
        (
            sms(recent_sends=(MIDWEEK_NOON, MIDWEEK_NOON), timezone="Pacific/Kiritimati"),
            SkipReason.FREQUENCY_CAP,
        ),
    ],
    ids=["holdout-first", "consent-before-suppression", "suppression-before-cap", "cap-before-quiet-hours"],
)
def test_the_first_failing_check_in_order_gives_the_reason(request_: GuardInput, reason: SkipReason) -> None:
    """Holdout, consent, suppression, frequency cap, then quiet hours."""
    assert check_guards(request_, POLICY, MIDWEEK_NOON) == Skip(reason=reason)


@pytest.mark.parametrize(
    ("now", "timezone", "expected"),
    [
        # 19:30 UTC: 21:30 in Paris (closed), 15:30 in New York (open).
        (utc(2025, 6, 11, 19, 30), PARIS, Defer(until=utc(2025, 6, 12, 6, 0))),
        (utc(2025, 6, 11, 19, 30), NEW_YORK, Send()),
        # 11:00 UTC: 13:00 in Paris (open), 07:00 in New York (not yet open).
        (utc(2025, 6, 11, 11, 0), PARIS, Send()),
        (utc(2025, 6, 11, 11, 0), NEW_YORK, Defer(until=utc(2025, 6, 11, 12, 0))),
    ],
    ids=["paris-evening", "new-york-afternoon", "paris-lunch", "new-york-early"],
)
def test_quiet_hours_follow_the_shoppers_timezone(now: datetime, timezone: str, expected: object) -> None:
    """The same UTC instant is allowed in one timezone and deferred in the other."""
    assert check_guards(sms(timezone=timezone), POLICY, now) == expected


@pytest.mark.parametrize(
    ("now", "expected_until"),
    [
        # Sunday 15 June 2025, 10:00 in Paris → Monday 16 June 08:00 CEST.
        (utc(2025, 6, 15, 8, 0), utc(2025, 6, 16, 6, 0)),
        # Saturday 14 June 2025, 21:00 in Paris → over Sunday to Monday 08:00.
        (utc(2025, 6, 14, 19, 0), utc(2025, 6, 16, 6, 0)),
        # Monday 16 June 2025, 07:59 in Paris → the same morning at 08:00.
        (utc(2025, 6, 16, 5, 59), utc(2025, 6, 16, 6, 0)),
        # Monday 16 June 2025, exactly 20:00 in Paris: the end is exclusive → Tuesday 08:00.
        (utc(2025, 6, 16, 18, 0), utc(2025, 6, 17, 6, 0)),
    ],
    ids=["sunday", "saturday-night", "monday-dawn", "end-is-exclusive"],
)
def test_a_step_in_quiet_hours_is_deferred_to_the_next_allowed_local_time(
    now: datetime, expected_until: datetime
) -> None:
    """Sundays are closed by default; the deferral lands on the next window start, never dropped."""
    verdict = check_guards(sms(), POLICY, now)
    assert verdict == Defer(until=expected_until, reason=DeferReason.QUIET_HOURS)


@pytest.mark.parametrize(
    ("now", "holidays", "expected_until"),
    [
        # Bastille Day, Monday 14 July 2025, 10:00 in Paris → Tuesday 08:00.
        (utc(2025, 7, 14, 8, 0), (date(2025, 7, 14),), utc(2025, 7, 15, 6, 0)),
        # Christmas Eve 21:00 in Paris, Christmas a holiday → 26 December 08:00 CET.
        (utc(2025, 12, 24, 20, 0), (date(2025, 12, 25),), utc(2025, 12, 26, 7, 0)),
        # Friday evening before a Saturday holiday → over Saturday and Sunday to Monday.
        (utc(2025, 11, 7, 20, 0), (date(2025, 11, 8),), utc(2025, 11, 10, 7, 0)),
    ],
    ids=["holiday-today", "holiday-tomorrow", "holiday-then-sunday"],
)
def test_public_holidays_are_skipped_like_sundays(
    now: datetime, holidays: tuple[date, ...], expected_until: datetime
) -> None:
    """No commercial SMS on a public holiday: the step moves to the next working day."""
    policy = GuardPolicy(quiet_hours=QuietHoursPolicy(timezone=PARIS, holidays=holidays))
    assert check_guards(sms(), policy, now) == Defer(until=expected_until)


@pytest.mark.parametrize(
    ("now", "timezone", "expected_until"),
    [
        # Paris springs forward on Sunday 30 March 2025: Saturday 21:00 CET → Monday 08:00 CEST (06:00 UTC).
        (utc(2025, 3, 29, 20, 0), PARIS, utc(2025, 3, 31, 6, 0)),
        # Paris falls back on Sunday 26 October 2025: Saturday 21:00 CEST → Monday 08:00 CET (07:00 UTC).
        (utc(2025, 10, 25, 19, 0), PARIS, utc(2025, 10, 27, 7, 0)),
        # New York springs forward on Sunday 9 March 2025: Saturday 22:00 EST → Monday 08:00 EDT.
        (utc(2025, 3, 9, 3, 0), NEW_YORK, utc(2025, 3, 10, 12, 0)),
    ],
    ids=["paris-spring", "paris-autumn", "new-york-spring"],
)
def test_deferral_across_a_dst_change_keeps_the_local_wall_time(
    now: datetime, timezone: str, expected_until: datetime
) -> None:
    """08:00 stays 08:00 local after the clocks change; only the UTC instant moves."""
    assert check_guards(sms(timezone=timezone), POLICY, now) == Defer(until=expected_until)


def test_a_window_start_inside_the_spring_forward_gap_opens_just_after_the_gap() -> None:
    """02:30 does not exist in Paris on 30 March 2025: the window opens at 03:30 CEST (01:30 UTC)."""
    every_day = tuple(Weekday)
    policy = GuardPolicy(quiet_hours=QuietHoursPolicy(start=time(2, 30), weekdays=every_day))
    verdict = check_guards(sms(), policy, utc(2025, 3, 30, 0, 0))
    assert verdict == Defer(until=utc(2025, 3, 30, 1, 30))


@pytest.mark.parametrize(
    ("recent", "cap", "expected"),
    [
        ((), 2, Send()),
        ((timedelta(hours=1),), 2, Send()),
        ((timedelta(hours=1), timedelta(hours=23)), 2, Skip(reason=SkipReason.FREQUENCY_CAP)),
        ((timedelta(hours=1), timedelta(hours=25)), 2, Send()),
        ((timedelta(hours=1), timedelta(hours=24)), 2, Send()),
        ((timedelta(hours=1), timedelta(hours=2)), 3, Send()),
        ((timedelta(hours=1),) * 5, 0, Send()),
    ],
    ids=["none", "one", "two-in-24h", "one-expired", "exactly-24h-ago", "cap-3", "cap-disabled"],
)
def test_frequency_cap_counts_sends_within_the_window(
    recent: tuple[timedelta, ...], cap: int, expected: object
) -> None:
    """Messages of every flow and agent callbacks count; a send exactly one window ago no longer does."""
    policy = GuardPolicy(frequency_cap=cap)
    request = sms(recent_sends=tuple(MIDWEEK_NOON - ago for ago in recent))
    assert check_guards(request, policy, MIDWEEK_NOON) == expected


def test_email_ignores_quiet_hours_by_default_but_sms_and_callback_wait() -> None:
    """An email lands in an inbox; an SMS or an agent's call reaches the shopper at once."""
    sunday = utc(2025, 6, 15, 8, 0)
    assert check_guards(sms(channel=ChannelName.EMAIL), POLICY, sunday) == Send()
    assert isinstance(check_guards(sms(channel=ChannelName.CALLBACK), POLICY, sunday), Defer)
    assert isinstance(check_guards(sms(channel=ChannelName.SMS), POLICY, sunday), Defer)


def test_an_internal_agent_task_ignores_quiet_hours_and_the_cap_but_not_consent() -> None:
    """A direct callback creates a task for agents, contacting nobody: only consent and holdout still apply."""
    sunday = utc(2025, 6, 15, 8, 0)
    spent = tuple(sunday - timedelta(minutes=n) for n in range(1, 10))
    request = sms(channel=ChannelName.CALLBACK, internal=True, recent_sends=spent)
    assert check_guards(request, POLICY, sunday) == Send()
    assert isinstance(check_guards(replace(request, consent=False), POLICY, sunday), Skip)


def test_a_store_override_replaces_the_default_window() -> None:
    """A US store may allow 08:00–21:00 (TCPA) while the default stays at the strictest 20:00."""
    us = QuietHoursPolicy(end=time(21, 0), timezone=NEW_YORK)
    policy = GuardPolicy(stores={"us": us})
    # Wednesday 11 June 2025, 20:30 in New York.
    now = utc(2025, 6, 12, 0, 30)
    assert check_guards(sms(store="us", timezone=NEW_YORK), policy, now) == Send()
    assert isinstance(check_guards(sms(store="default", timezone=NEW_YORK), policy, now), Defer)


@pytest.mark.parametrize("timezone", [None, "", "Mars/Olympus_Mons"], ids=["missing", "empty", "unknown"])
def test_a_shopper_without_a_valid_timezone_gets_the_stores(timezone: str | None) -> None:
    """The store's timezone decides when the shopper's is missing or not a known IANA name."""
    policy = GuardPolicy(quiet_hours=QuietHoursPolicy(timezone=NEW_YORK))
    # 11:00 UTC is 07:00 in New York (closed) but 13:00 in Paris (open).
    verdict = check_guards(sms(timezone=timezone), policy, utc(2025, 6, 11, 11, 0))
    assert verdict == Defer(until=utc(2025, 6, 11, 12, 0))


def test_a_naive_now_is_refused() -> None:
    """Time zones matter here: a naive datetime is a programming error."""
    with pytest.raises(ValueError, match="aware"):
        check_guards(sms(), POLICY, datetime(2025, 6, 11, 12, 0))


def test_the_policy_reads_operator_friendly_values() -> None:
    """Times, weekday names, ISO dates and ``12h`` durations load from YAML-like data."""
    policy = GuardPolicy.model_validate(
        {
            "quiet_hours": {"start": "09:00", "end": "19:30", "weekdays": ["mon", "tue"]},
            "stores": {"fr": {"timezone": PARIS, "holidays": ["2025-12-25"]}},
            "frequency_cap": 3,
            "frequency_window": "12h",
        }
    )
    assert policy.quiet_hours.start == time(9, 0)
    assert policy.quiet_hours.weekdays == (Weekday.MONDAY, Weekday.TUESDAY)
    assert policy.quiet_hours_for("fr").holidays == (date(2025, 12, 25),)
    assert policy.quiet_hours_for("elsewhere") == policy.quiet_hours
    assert policy.frequency_window == timedelta(hours=12)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start": "20:00", "end": "08:00"}, "must be before end"),
        ({"timezone": "Europe/Pariss"}, "not an IANA timezone"),
        ({"weekdays": []}, "at least 1"),
        ({"weekdays": ["sunday"]}, "mon"),
    ],
    ids=["backwards-window", "bad-timezone", "no-weekday", "bad-weekday"],
)
def test_an_invalid_quiet_hours_policy_is_refused_with_a_readable_error(
    fields: dict[str, object], message: str
) -> None:
    """Configuration mistakes fail at start-up, naming what to write instead."""
    with pytest.raises(ValidationError, match=message):
        QuietHoursPolicy.model_validate(fields)


def test_holdout_is_deterministic_for_a_key_and_salt() -> None:
    """The same journey always lands in the same group; another salt reshuffles the groups."""
    keys = [f"journey-{n}" for n in range(200)]
    first = [in_holdout(key, salt="s1", percent=50) for key in keys]
    again = [in_holdout(key, salt="s1", percent=50) for key in keys]
    other_salt = [in_holdout(key, salt="s2", percent=50) for key in keys]
    assert first == again
    assert first != other_salt


@pytest.mark.parametrize("percent", [0.0, 5.0, 10.0, 50.0, 100.0])
def test_holdout_share_matches_the_percent_over_many_keys(percent: float) -> None:
    """Over 10 000 keys the control group is within one point of the configured share."""
    keys = [f"journey-{n}" for n in range(10_000)]
    share = 100 * sum(in_holdout(key, salt="launch", percent=percent) for key in keys) / len(keys)
    assert abs(share - percent) <= 1.0
