"""The service's own metrics, registered on the app's registry so ``/metrics`` serves them with HTTP's.

Every label set is bounded: dead-letter reasons are folded into a few categories, channels and outcomes
are enums, partitions are the topics' own.
"""

from __future__ import annotations

import hashlib
import re
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

# Provider calls: a few ms (local relay) to tens of seconds (timeouts are 10 s by default).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# First match wins; the reason texts are those of events.py, poison.py and the batch's database refusals.
_REASONS = (
    ("too_large", re.compile(r"max_event_bytes")),
    ("not_json", re.compile(r"not JSON|not a JSON object|empty message|cannot decode")),
    ("unknown_type", re.compile(r"unknown event type|missing field 'type'")),
    ("database_refused", re.compile(r"database refused")),
    ("invalid_event", re.compile(r".")),
)
REASONS = tuple(name for name, _ in _REASONS)

# What each worker of `--workers N` counts for itself, joined over the workers on worker 0's page (ops/merge.py).
# The rest is the same in every worker (read from the database, the configuration) or worker 0's own (HTTP).
PER_WORKER = frozenset(
    {
        "recovery_consumer_lag",
        "recovery_events",
        "recovery_dead_letters",
        "recovery_sends",
        "recovery_provider_latency_seconds",
        "recovery_claims_taken_over",
    }
)


def reason_category(reason: str) -> str:
    """The bounded label for a dead-letter reason (the full reason is in the dead letter itself)."""
    for name, pattern in _REASONS:
        if pattern.search(reason):
            return name
    return "invalid_event"


def config_digest(content: object) -> str:
    """A short, stable label for a version of the flows or templates (12 hex characters)."""
    raw = content if isinstance(content, bytes) else repr(content).encode()
    return hashlib.sha256(raw).hexdigest()[:12]


class _Takeovers:
    """Claims taken over from dead workers in this process (counted where claims are made, in the store)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self, count: int) -> None:
        with self._lock:
            self.count += count


TAKEOVERS = _Takeovers()


class _TakeoverCollector(Collector):
    def collect(self) -> list[CounterMetricFamily]:
        family = CounterMetricFamily(
            "recovery_claims_taken_over", "Due-step claims taken over from a worker that died or whose lease ran out"
        )
        family.add_metric([], TAKEOVERS.count)
        return [family]


class ServiceMetrics:
    """Counters and gauges the service's parts update; created once per app registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.consumer_lag = Gauge(
            "recovery_consumer_lag",
            "Records not yet committed by this consumer, per assigned partition (high watermark - committed)",
            ["topic", "partition"],
            registry=registry,
        )
        self.events = Counter(
            "recovery_events",
            "Input events by outcome: applied, duplicate or dead_lettered",
            ["outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "recovery_dead_letters",
            "Events sent to the dead-letter topic, by reason category",
            ["reason"],
            registry=registry,
        )
        self.steps_due = Gauge("recovery_steps_due", "Pending steps whose time has come", registry=registry)
        self.steps_overdue = Gauge(
            "recovery_steps_overdue",
            "Pending steps due for longer than the overdue threshold (1 min)",
            registry=registry,
        )
        self.oldest_due_age = Gauge(
            "recovery_oldest_due_step_age_seconds", "How long the oldest pending due step has waited", registry=registry
        )
        self.sends = Counter(
            "recovery_sends", "Provider calls by channel and outcome", ["channel", "outcome"], registry=registry
        )
        self.provider_latency = Histogram(
            "recovery_provider_latency_seconds",
            "Time a provider took to answer a send, by channel",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.config_info = Gauge(
            "recovery_config_info",
            "The flows file and the saved template versions in use (1 for the current pair)",
            ["flows", "templates"],
            registry=registry,
        )
        registry.register(_TakeoverCollector())
        for outcome in ("applied", "duplicate", "dead_lettered"):
            self.events.labels(outcome=outcome)
        for reason in REASONS:
            self.dead_letters.labels(reason=reason)

    def set_config(self, flows: str, templates: str) -> None:
        """Show only the current flows / templates pair."""
        self.config_info.clear()
        self.config_info.labels(flows=flows, templates=templates).set(1)
