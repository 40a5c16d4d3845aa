"""Input topics of a platform format: records translated to native events before validation.

``kafka.topics.<role>.format`` names the format; a record that does not map is rejected (dead letter)
with a reason naming the format and the field; a platform type the service does not use is skipped and
counted in ``/metrics`` as ``recovery_platform_events_skipped_total{format,type}``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from recovery.adapters.base import Rejected, Skipped, Translated
from recovery.adapters.formats import header_map, translate_record
from recovery.events import Event, Rejection, parse_event
from recovery.settings import TopicsSettings

MAX_SKIP_SERIES = 200  # label values come from platforms: bounded, the rest is counted as "other"


class PlatformSkips:
    """Running counts of skipped platform types, by (format, type); shared by Kafka ingest and webhooks."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def count(self, skipped: Skipped) -> None:
        """Count one skipped platform event."""
        key = (skipped.format, skipped.type)
        with self._lock:
            if key not in self._counts and len(self._counts) >= MAX_SKIP_SERIES:
                key = (skipped.format, "other")
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        """The counts now."""
        with self._lock:
            return dict(self._counts)


class SkipsCollector(Collector):
    """Exposes the counts of whatever ``PlatformSkips`` ``source()`` returns at scrape time."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "recovery_platform_events_skipped",
            "Platform events of a type the service does not use, skipped (not dead-lettered)",
            labels=["format", "type"],
        )
        skips: PlatformSkips = self._source()
        for (format_, type_), value in sorted(skips.snapshot().items()):
            family.add_metric([format_, type_], value)
        yield family


def topic_formats(topics: TopicsSettings) -> dict[str, str]:
    """Input topic name → its format, for the topics that are not native."""
    return {topic.name: topic.format for topic in topics.inputs() if topic.format != "native"}


def events_from_platform(outcome: Translated, format_: str) -> list[Event] | Rejection:
    """Validate each translated event with the consumer's own models; the first refusal names the format."""
    parsed: list[Event] = []
    for document in outcome.events:
        event = parse_event(json.dumps(document, ensure_ascii=False).encode("utf-8"))
        if isinstance(event, Rejection):
            return Rejection(reason=f"{format_} (translated to {document.get('type')}): {event.reason}")
        parsed.append(event)
    return parsed


def decode_platform_record(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
    format_: str,
    *,
    max_bytes: int,
) -> list[Event] | Rejection | Skipped:
    """One record of ``format_``: its native events, a rejection (dead letter) or a skip (counted)."""
    if value is not None and len(value) > max_bytes:
        return Rejection(reason=f"event is {len(value)} bytes, above ingest.max_event_bytes ({max_bytes})")
    try:
        outcome = translate_record(format_, value, header_map(headers))
    except RecursionError:
        return Rejection(reason=f"{format_}: not JSON: nested too deeply")
    except Exception as exc:  # a translator bug must cost one record, never the batch
        return Rejection(reason=f"{format_}: cannot translate: {type(exc).__name__}")
    if isinstance(outcome, Rejected):
        return Rejection(reason=outcome.reason)
    if isinstance(outcome, Skipped):
        return outcome
    return events_from_platform(outcome, format_)
