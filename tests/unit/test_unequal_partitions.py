"""The start-up warning about input topics whose partition counts differ (ingest/kafka.unequal_partitions_warning)."""

from __future__ import annotations

from recovery.ingest.kafka import unequal_partitions_warning


def test_equal_counts_give_no_warning() -> None:
    assert unequal_partitions_warning({"cart-events": 4, "order-events": 4, "payment-events": 4}) is None


def test_a_single_or_no_topic_gives_no_warning() -> None:
    assert unequal_partitions_warning({"cart-events": 4}) is None
    assert unequal_partitions_warning({}) is None


def test_unequal_counts_name_every_topic_and_what_to_do() -> None:
    warning = unequal_partitions_warning({"order-events": 8, "cart-events": 4, "payment-events": 4})
    assert warning is not None
    assert "cart-events 4, order-events 8, payment-events 4" in warning
    assert "same number of partitions" in warning
