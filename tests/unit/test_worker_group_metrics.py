"""``--workers N``: worker 0's page joins every worker's series; its readiness waits for every worker."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import create_async_engine

from recovery.api.health_routes import HttpMetrics, health_router
from recovery.errors import NotReady
from recovery.ops.merge import merge_families
from recovery.ops.metrics import PER_WORKER, ServiceMetrics
from recovery.ops.peers import Peers
from recovery.ops.worker_slot import WorkerSlot

Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def values(text: str) -> Values:
    """Every sample of a page, by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def worker(applied: int, partitions: dict[str, int], *, messages: int = 0) -> tuple[HttpMetrics, ServiceMetrics]:
    """One worker's registry: its applied events, its partitions' lag, what it read from the database."""
    http = HttpMetrics()
    metrics = ServiceMetrics(http.registry)
    metrics.events.labels(outcome="applied").inc(applied)
    for partition, lag in partitions.items():
        metrics.consumer_lag.labels("shop.cart", partition).set(lag)
    http.messages.labels(state="sent").set(messages)
    return http, metrics


class Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def page_of(own: HttpMetrics, *others: HttpMetrics) -> Values:
    """Worker 0's merged page, the others read from their text pages as worker 0 reads them."""
    parsed = [list(text_string_to_metric_families(generate_latest(o.registry).decode())) for o in others]
    registry = CollectorRegistry()
    registry.register(Families(merge_families(own.registry.collect(), parsed, PER_WORKER)))
    return values(generate_latest(registry).decode())


def test_events_are_summed_over_the_workers() -> None:
    """189 events applied by worker 0 and 211 by worker 1 read as 400 applied."""
    own, _ = worker(189, {"1": 0, "3": 0})
    other, _ = worker(211, {"0": 0, "2": 0})
    page = page_of(own, other)
    assert page[("recovery_events_total", (("outcome", "applied"),))] == 400
    assert page[("recovery_events_total", (("outcome", "duplicate"),))] == 0


def test_lag_shows_every_partition_once_from_the_worker_that_holds_it() -> None:
    own, _ = worker(0, {"1": 5, "3": 7})
    other, _ = worker(0, {"0": 2, "2": 9})
    page = page_of(own, other)
    lag = {dict(labels)["partition"]: v for (name, labels), v in page.items() if name == "recovery_consumer_lag"}
    assert lag == {"0": 2, "1": 5, "2": 9, "3": 7}


def test_a_partition_reported_twice_during_a_rebalance_is_not_added_up() -> None:
    own, _ = worker(0, {"1": 5})
    other, _ = worker(0, {"1": 6})
    page = page_of(own, other)
    assert page[("recovery_consumer_lag", (("partition", "1"), ("topic", "shop.cart")))] == 6


def test_database_gauges_and_http_counters_are_worker_zeros_only() -> None:
    """The messages gauge is the same table for every worker, and worker 1's HTTP is worker 0's scrapes of it."""
    own, _ = worker(0, {}, messages=12)
    other, _ = worker(0, {}, messages=12)
    other.observe(method="GET", route="/metrics", status=200, seconds=0.01)
    page = page_of(own, other)
    assert page[("recovery_messages", (("state", "sent"),))] == 12
    assert not [key for key in page if key[0] == "recovery_http_requests_total"]


def test_histograms_are_summed_bucket_by_bucket_and_created_is_the_earliest() -> None:
    own, own_metrics = worker(0, {})
    other, other_metrics = worker(0, {})
    own_metrics.provider_latency.labels(channel="email").observe(0.02)
    other_metrics.provider_latency.labels(channel="email").observe(3.0)
    other_metrics.provider_latency.labels(channel="sms").observe(0.2)
    own_metrics.sends.labels(channel="email", outcome="sent").inc()
    other_metrics.sends.labels(channel="email", outcome="sent").inc(2)
    page = page_of(own, other)
    email = (("channel", "email"),)
    assert page[("recovery_provider_latency_seconds_count", email)] == 2
    assert page[("recovery_provider_latency_seconds_sum", email)] == pytest.approx(3.02)
    assert page[("recovery_provider_latency_seconds_bucket", (("channel", "email"), ("le", "0.025")))] == 1
    assert page[("recovery_provider_latency_seconds_bucket", (("channel", "email"), ("le", "+Inf")))] == 2
    assert page[("recovery_provider_latency_seconds_count", (("channel", "sms"),))] == 1
    sent = (("channel", "email"), ("outcome", "sent"))
    assert page[("recovery_sends_total", sent)] == 3
    created = [values(generate_latest(w.registry).decode())[("recovery_sends_created", sent)] for w in (own, other)]
    assert page[("recovery_sends_created", sent)] == min(created)


def test_the_slot_travels_in_the_environment(tmp_path: Path) -> None:
    slot = WorkerSlot(index=1, count=3, directory=tmp_path)
    assert WorkerSlot.from_env({"CART_RECOVERY_WORKER": slot.to_env()}) == slot
    assert WorkerSlot.from_env({}) is None


def test_a_worker_announces_its_port_to_worker_zero(tmp_path: Path) -> None:
    front = WorkerSlot(index=0, count=2, directory=tmp_path)
    assert front.peer_port(1) is None
    WorkerSlot(index=1, count=2, directory=tmp_path).announce(43210)
    assert front.peer_port(1) == 43210


def _answering(pages: dict[int, dict[str, httpx.Response]]) -> httpx.MockTransport:
    """Workers by port, each answering its paths; a missing path is a worker that does not answer."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = pages.get(request.url.port or 0, {}).get(request.url.path)
        if answer is None:
            raise httpx.ConnectTimeout("no answer", request=request)
        return answer

    return httpx.MockTransport(handle)


async def test_worker_zero_is_not_ready_until_every_worker_is(tmp_path: Path) -> None:
    """Not started, unready (naming its failing checks) and silent workers each make the group unready."""
    front = WorkerSlot(index=0, count=4, directory=tmp_path)
    for index, port in ((1, 9001), (2, 9002), (3, 9003)):
        WorkerSlot(index=index, count=4, directory=tmp_path).announce(port)
    pages = {
        9001: {"/readyz": httpx.Response(200, json={"status": "ok", "failing": []})},
        9002: {"/readyz": httpx.Response(503, json={"status": "unavailable", "failing": ["service"]})},
    }
    async with Peers(front, transport=_answering(pages)) as peers:
        with pytest.raises(NotReady) as refused:
            await peers.ready()
        assert str(refused.value) == "worker 2: service; worker 3: no answer"
        pages[9002] = pages[9003] = pages[9001]
        assert await peers.ready()
    (tmp_path / "worker-3.port").unlink()
    async with Peers(front, transport=_answering(pages)) as peers:
        with pytest.raises(NotReady, match="worker 3: starting"):
            await peers.ready()


async def test_a_worker_that_misses_a_scrape_keeps_its_last_series(tmp_path: Path) -> None:
    """Its counters dropping out of the sum would look like a reset to rate()."""
    front = WorkerSlot(index=0, count=2, directory=tmp_path)
    WorkerSlot(index=1, count=2, directory=tmp_path).announce(9001)
    other, _ = worker(211, {"0": 0})
    pages = {9001: {"/metrics": httpx.Response(200, content=generate_latest(other.registry))}}
    async with Peers(front, transport=_answering(pages)) as peers:
        first = await peers.families()
        del pages[9001]
        again = await peers.families()
        pages[9001] = {"/metrics": httpx.Response(200, content=b"recovery_events_total{outcome=")}
        cut = await peers.families()
    assert again == first == cut
    assert any(s.value == 211 for family in again[0] for s in family.samples if s.name == "recovery_events_total")


async def test_one_scrape_of_worker_zero_shows_the_group_and_readyz_names_it(tmp_path: Path) -> None:
    """Through the routes: the page joins worker 1's events; /readyz fails on worker 1's failing check."""
    front = WorkerSlot(index=0, count=2, directory=tmp_path)
    WorkerSlot(index=1, count=2, directory=tmp_path).announce(9001)
    other, _ = worker(211, {"0": 0, "2": 0})
    pages = {
        9001: {
            "/metrics": httpx.Response(200, content=generate_latest(other.registry)),
            "/readyz": httpx.Response(503, json={"failing": ["database"]}),
        }
    }
    own, _ = worker(189, {"1": 0, "3": 0})
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/h.db")
    app = FastAPI()
    app.include_router(health_router(engine=engine, metrics=own, ready=None))
    try:
        async with (
            Peers(front, transport=_answering(pages)) as own.peers,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w0") as client,
        ):
            page = values((await client.get("/metrics")).text)
            ready = await client.get("/readyz")
    finally:
        await engine.dispose()
    assert page[("recovery_events_total", (("outcome", "applied"),))] == 400
    assert {dict(k[1])["partition"] for k in page if k[0] == "recovery_consumer_lag"} == {"0", "1", "2", "3"}
    assert ready.status_code == 503
    assert ready.json()["checks"]["workers"] == "not ready: worker 1: database"
