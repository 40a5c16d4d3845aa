"""The service's own metrics on /metrics: lag, events by outcome, dead letters by reason, sends, due steps."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.ingest.kafka import Producer, ensure_topics
from recovery.ops import sampler
from recovery.ops.metrics import ServiceMetrics, config_digest, reason_category
from recovery.ops.sampler import sample_lag, sample_steps
from recovery.store.schema import steps
from tests.harness import cart, customer, event, eventually, running_service, service_settings

CARTS = 30


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.kafka
async def test_metrics_after_a_scripted_run(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of 30 carts, one poison event and one repeated id, consumed by a fresh service: lag falls to 0
    on every partition, 30 applied / 1 duplicate / 1 dead-lettered (counted once, as not_json), every email
    counted as sent with a latency each, no step left due, and the flows version in use."""
    monkeypatch.setattr(sampler, "SAMPLE_EVERY_S", 0.3)
    settings = service_settings(
        bootstrap=kafka_bootstrap, database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db", workdir=tmp_path
    )
    await ensure_topics(kafka_bootstrap, settings.kafka)
    backlog = Producer(kafka_bootstrap)
    await backlog.start()
    first = event("cart.updated", "cart-0", customer=customer(0, email=True), cart=cart())
    events = [first] + [
        event("cart.updated", f"cart-{i}", customer=customer(i, email=True), cart=cart()) for i in range(1, CARTS)
    ]
    topic = settings.kafka.topics.cart.name
    await backlog.send_many(topic, [(e["cart_id"], json.dumps(e).encode()) for e in events])
    await backlog.send_many(topic, [("cart-0", json.dumps(first).encode()), ("poison", b"{not json")])
    await backlog.stop()

    async with running_service(settings) as harness:
        url = f"http://127.0.0.1:{harness.service.http_port}/metrics"
        async with httpx.AsyncClient() as http:

            async def settled() -> bool:
                values = scrape((await http.get(url)).text)
                lags = [v for (name, _), v in values.items() if name == "recovery_consumer_lag"]
                sent = values.get(("recovery_sends_total", (("channel", "email"), ("outcome", "sent"))), 0)
                return bool(lags) and sum(lags) == 0 and sent >= CARTS and values[("recovery_steps_due", ())] == 0

            await eventually(settled, timeout=60, interval=0.5)
            values = scrape((await http.get(url)).text)

    lag_partitions = {dict(labels)["partition"] for (name, labels) in values if name == "recovery_consumer_lag"}
    assert {"0", "1"} <= lag_partitions  # both partitions of the input topic, per assigned partition
    assert values[("recovery_events_total", (("outcome", "applied"),))] == CARTS
    assert values[("recovery_events_total", (("outcome", "duplicate"),))] == 1
    assert values[("recovery_events_total", (("outcome", "dead_lettered"),))] == 1
    assert values[("recovery_dead_letters_total", (("reason", "not_json"),))] == 1
    assert sum(v for (name, _), v in values.items() if name == "recovery_dead_letters_total") == 1
    emails = len(harness.outbox())
    assert values[("recovery_sends_total", (("channel", "email"), ("outcome", "sent")))] == emails == CARTS
    assert values[("recovery_provider_latency_seconds_count", (("channel", "email"),))] == emails
    flows = config_digest(settings.flows_file.read_bytes())
    assert values[("recovery_config_info", (("flows", flows), ("templates", "files")))] == 1
    assert ("recovery_claims_taken_over_total", ()) in values


async def test_due_and_overdue_steps_are_counted_with_the_oldest_age(engine: AsyncEngine) -> None:
    """Two pending steps due (one for 5 min: overdue), one due later, one already sent: due 2, overdue 1, 300 s."""
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    rows = [
        ("a", "pending", now - timedelta(minutes=5)),
        ("b", "pending", now - timedelta(seconds=10)),
        ("c", "pending", now + timedelta(minutes=5)),
        ("d", "sent", now - timedelta(hours=1)),
    ]
    async with engine.begin() as conn:
        for name, status, due in rows:
            await conn.execute(
                steps.insert().values(
                    step_id=f"j:{name}",
                    journey_id="j",
                    cart_id="c",
                    name=name,
                    position=0,
                    channel="email",
                    due_at=due,
                    status=status,
                    attempts=0,
                    updated_at=now,
                )
            )
    metrics = ServiceMetrics(CollectorRegistry())
    await sample_steps(engine, metrics, now)
    assert metrics.steps_due._value.get() == 2
    assert metrics.steps_overdue._value.get() == 1
    assert metrics.oldest_due_age._value.get() == 300


@dataclass
class FakeConsumer:
    """The three figures a consumer knows per partition: high watermark, committed offset, position."""

    high: dict[int, int | None]
    committed_at: dict[int, int | None]
    positions: dict[int, int] = field(default_factory=dict)

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("cart-events", p) for p in self.high}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high[tp.partition]

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_at[tp.partition]

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp.partition]


async def test_lag_is_the_high_watermark_minus_the_committed_offset_per_partition() -> None:
    """Lag per assigned partition: committed offset when there is one, else the position; none before a fetch;
    a partition that moved away in a rebalance loses its series."""
    metrics = ServiceMetrics(CollectorRegistry())
    consumer = FakeConsumer(high={0: 120, 1: 50, 2: None}, committed_at={0: 100, 1: None, 2: 0}, positions={1: 45})
    await sample_lag([consumer], metrics)
    lags = {s.labels["partition"]: s.value for m in metrics.consumer_lag.collect() for s in m.samples}
    assert lags == {"0": 20, "1": 5}
    await sample_lag([FakeConsumer(high={1: 50}, committed_at={1: 50})], metrics)
    lags = {s.labels["partition"]: s.value for m in metrics.consumer_lag.collect() for s in m.samples}
    assert lags == {"1": 0}


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("not JSON: JSONDecodeError (Expecting value)", "not_json"),
        ("empty message: expected one JSON object", "not_json"),
        ("event is 2000000 bytes, above ingest.max_event_bytes (1000000)", "too_large"),
        ("unknown event type 'cart.exploded' (expected one of: …)", "unknown_type"),
        ("cart.value: must be >= 0; occurred_at: not RFC 3339", "invalid_event"),
        ("the database refused the event's values: DataError", "database_refused"),
    ],
)
def test_dead_letter_reasons_fold_into_a_bounded_label_set(reason: str, category: str) -> None:
    """Free-text reasons become one of a few labels, so the series cannot grow with bad input."""
    assert reason_category(reason) == category
