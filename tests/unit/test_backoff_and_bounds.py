"""Loops back off and log state changes once; outside input cannot grow the metrics without bound."""

from __future__ import annotations

import itertools
import logging

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from recovery.api.health_routes import HttpMetrics
from recovery.backoff import Backoff, is_outage
from recovery.errors import PermanentError, TransientError
from recovery.ingest.poison import refusal_reason


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    backoff = Backoff("db", base=0.5, cap=10)
    delays = [backoff.failed(OSError("down")) for _ in range(8)]
    assert delays[0] <= 0.6 and delays[3] >= 3.2  # 0.5, 1, 2, 4 … with ±20 % jitter
    assert max(delays) <= 12.0
    assert all(later >= earlier * 0.6 for earlier, later in itertools.pairwise(delays))


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    backoff = Backoff("scheduler")
    with caplog.at_level(logging.WARNING, logger="recovery.backoff"):
        for _ in range(50):
            backoff.failed(ConnectionRefusedError("refused"))
        backoff.succeeded()
        backoff.succeeded()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "scheduler unavailable" in messages[0] and "scheduler back after 50" in messages[1]


class _Orig(Exception):
    pass


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (TransientError("smtp 421"), True),
        (PermanentError("bad number"), False),
        (IntegrityError("insert", {}, _Orig()), False),
        (DBAPIError("select", {}, ConnectionResetError(), connection_invalidated=True), True),
        (DBAPIError("insert", {}, _Orig("value out of range")), False),
        (ValueError("bad locale"), False),
    ],
)
def test_outages_are_told_apart_from_poison(error: BaseException, outage: bool) -> None:
    assert is_outage(error) is outage


def test_a_database_refusal_names_the_driver_error_not_the_values() -> None:
    reason = refusal_reason(DBAPIError("insert", {"email": "a@b.com"}, _Orig("a@b.com is bad")))
    assert reason == "the database refused the event's values: _Orig"


def test_made_up_http_methods_share_one_metrics_series() -> None:
    metrics = HttpMetrics()
    for index in range(300):
        metrics.observe(method=f"FOO{index}", route="unmatched", status=405, seconds=0.001)
    metrics.observe(method="GET", route="/healthz", status=200, seconds=0.001)
    methods = {sample.labels["method"] for metric in metrics.requests.collect() for sample in metric.samples}
    assert methods == {"other", "GET"}
