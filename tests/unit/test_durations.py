"""Durations as operators write them: ``90s``, ``30m``, ``2h``, ``7d`` and combinations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from recovery.durations import Duration, format_duration, parse_duration

DURATION: TypeAdapter[timedelta] = TypeAdapter(Duration)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("250ms", timedelta(milliseconds=250)),
        ("0s", timedelta(0)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1m30s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        (" 1h 30m ", timedelta(minutes=90)),
        ("30m30m", timedelta(hours=1)),
    ],
)
def test_parse_duration_reads_operator_forms(text: str, expected: timedelta) -> None:
    """Each documented form parses to the timedelta it says."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "30", "30x", "30M", "h", "m30", "-5m", "1h-30m", "1e3s", "thirty minutes", "1.2.3h", "30mm"],
)
def test_parse_duration_refuses_anything_else_with_the_accepted_forms(text: str) -> None:
    """A bad duration raises ValueError quoting the input and showing examples of good ones."""
    with pytest.raises(ValueError, match=r"is not a duration: write e\.g\. 90s, 30m, 2h, 7d") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("text", ["99999999999d", "1000000000000000000000s"])
def test_an_absurdly_long_duration_is_a_value_error(text: str) -> None:
    """A duration beyond what a timedelta holds is a ValueError quoting it, not an OverflowError."""
    with pytest.raises(ValueError, match="too long a duration") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=7), "7d"),
        (timedelta(hours=2), "2h"),
        (timedelta(hours=48), "2d"),
        (timedelta(minutes=30), "30m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=90), "90s"),
        (timedelta(seconds=1), "1s"),
        (timedelta(milliseconds=200), "0.2s"),
        (timedelta(0), "0s"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_format_duration_picks_the_largest_exact_unit(delta: timedelta, text: str) -> None:
    """The formatted form is the largest unit that divides the duration exactly."""
    assert format_duration(delta) == text


@pytest.mark.parametrize(
    "delta",
    [timedelta(days=3), timedelta(hours=5), timedelta(minutes=90), timedelta(seconds=61), timedelta(0)],
)
def test_formatting_then_parsing_gives_the_same_duration(delta: timedelta) -> None:
    """format_duration's output is always something parse_duration reads back exactly."""
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(hours=1), timedelta(hours=1)),
    ],
)
def test_duration_fields_accept_text_seconds_and_timedeltas(value: object, expected: timedelta) -> None:
    """A ``Duration`` field takes ``30m`` text, plain seconds or a timedelta."""
    assert DURATION.validate_python(value) == expected


def test_duration_fields_serialise_to_operator_text() -> None:
    """A ``Duration`` field dumps back to its short text form."""
    assert DURATION.dump_python(timedelta(minutes=30)) == "30m"


@pytest.mark.parametrize("value", ["30x", None, [30]])
def test_duration_fields_refuse_bad_values_as_validation_errors(value: object) -> None:
    """A bad value in a ``Duration`` field is a pydantic ValidationError (so callers can name the key)."""
    with pytest.raises(ValidationError):
        DURATION.validate_python(value)
