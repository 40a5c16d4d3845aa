"""The set-based writes convert timestamps exactly as SQLAlchemy's column types would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import AwareDatetime, TypeAdapter
from sqlalchemy.dialects.sqlite import aiosqlite

from recovery.store.schema import TS, carts
from recovery.store.sql import _bound, _processors

DIALECT = aiosqlite.dialect()
PARIS = timezone(timedelta(hours=1))
TIMES = [
    datetime(2026, 12, 2, 5, 21, 1, 790858, tzinfo=UTC),
    datetime(2026, 12, 2, 5, 21, 1, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 12, 2, 6, 21, 1, 5, tzinfo=PARIS),
    TypeAdapter(AwareDatetime).validate_python("2026-03-29T01:59:59.5Z"),  # pydantic's own UTC tzinfo
    datetime(999, 1, 1, tzinfo=UTC),
    None,
]


def test_sqlite_timestamps_are_the_text_sqlalchemy_writes() -> None:
    expected = TS.dialect_impl(DIALECT).bind_processor(DIALECT)
    assert expected is not None
    names = ("cart_id", "first_event_at")
    (_, written) = _bound([("c", t) for t in TIMES], _processors(carts, names, DIALECT), carts, names, frozenset())
    assert written == [None if t is None else expected(t) for t in TIMES]


def test_a_naive_timestamp_is_refused_as_before() -> None:
    names = ("first_event_at",)
    with pytest.raises(ValueError, match="naive datetime"):
        _bound([(datetime(2026, 1, 1),)], _processors(carts, names, DIALECT), carts, names, frozenset())
