"""Operators' endpoints: liveness, readiness (service + database) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.errors import NotReady
from recovery.ops.gauge_rows import read_gauges
from recovery.ops.merge import merge_families
from recovery.ops.metrics import PER_WORKER
from recovery.ops.peers import Peers
from recovery.states import MessageState
from recovery.store.database import ping

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0
# Label values come from outside: anything else is counted as "other" so the series cannot grow unbounded.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """The app's own registry, so two apps in one process (tests) never share a series."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recovery_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "recovery_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            registry=self.registry,
        )
        self.messages = Gauge(
            "recovery_messages",
            "Messages by state, read from the database at scrape time (the same for every replica)",
            ["state"],
            registry=self.registry,
        )

        self.claims_expired = 0  # read from the database at scrape time, like the messages gauge
        self.registry.register(_ExpiredClaims(self))
        # Set by the service when it is one worker of `--workers N` (all None / True when it runs alone):
        self.refresh: Callable[[], Awaitable[None]] | None = None  # scrape-time gauges (this worker's lag)
        self.peers: Peers | None = None  # worker 0: the other workers' series and readiness join its own
        self.database_gauges = True  # False on workers 1..N-1: worker 0 alone reads them for the page

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        method = method if method in KNOWN_METHODS else "other"
        status_label = str(status) if 100 <= status <= 599 else "other"
        self.requests.labels(method=method, route=route, status=status_label).inc()
        self.duration.labels(route=route).observe(seconds)


async def _check(probe: Callable[[], Awaitable[bool]]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return "ok" if await probe() else "not ready"
    except TimeoutError:
        return "timed out"
    except NotReady as exc:
        return f"not ready: {exc}"  # the cause in words (e.g. the broker refused the credentials), no secret
    except Exception as exc:
        return f"error: {type(exc).__name__}"


class _ExpiredClaims(Collector):
    """``recovery_callback_claims_expired_total``: agents' claims that ran out (the audit's count)."""

    def __init__(self, metrics: HttpMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "recovery_callback_claims_expired",
            "Callback task claims that ran out before an outcome and went back to the queue",
            value=self._metrics.claims_expired,
        )


def health_router(
    *, engine: AsyncEngine, metrics: HttpMetrics, ready: Callable[[], Awaitable[bool]] | None
) -> APIRouter:
    """``/healthz``, ``/readyz`` and ``/metrics``."""
    router = APIRouter(include_in_schema=False)

    async def database_answers() -> bool:
        return await ping(engine)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        probes: dict[str, Callable[[], Awaitable[bool]]] = {"database": database_answers}
        if ready is not None:
            probes = {"service": ready, **probes}
        if metrics.peers is not None:
            probes["workers"] = metrics.peers.ready  # one worker not ready: the pod is not
        results = dict(zip(probes, await asyncio.gather(*(_check(p) for p in probes.values())), strict=True))
        failing = sorted(name for name, result in results.items() if result != "ok")
        if failing:
            log.warning("not ready", extra={"failing": ",".join(failing)})
        body = {"status": "unavailable" if failing else "ok", "checks": results, "failing": failing}
        return JSONResponse(body, status_code=503 if failing else 200, headers={"Cache-Control": "no-store"})

    @router.get("/metrics")
    async def scrape() -> Response:
        if metrics.database_gauges:
            await _read_database_gauges(engine, metrics)
        if metrics.refresh is not None:
            await _refresh(metrics.refresh)
        if metrics.peers is None:
            return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
        page = _Page(merge_families(metrics.registry.collect(), await metrics.peers.families(), PER_WORKER))
        return Response(generate_latest(page.registry()), media_type=CONTENT_TYPE_LATEST)

    return router


async def _read_database_gauges(engine: AsyncEngine, metrics: HttpMetrics) -> None:
    """Messages by state and expired claims, read now; the last values stay while the database is down."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            gauges = await read_gauges(engine)
        metrics.claims_expired = gauges.claims_expired
        for state in MessageState:
            metrics.messages.labels(state=state.value).set(gauges.messages_by_state.get(state.value, 0))
    except Exception as exc:
        # Metrics about requests stay useful while the database is down: keep the last values.
        log.warning("messages gauge not refreshed", extra={"error": type(exc).__name__})


async def _refresh(refresh: Callable[[], Awaitable[None]]) -> None:
    """A worker's scrape-time gauges (its partitions' lag now, none it lost since); the last values on failure."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S / 2):
            await refresh()
    except Exception as exc:
        log.debug("scrape-time gauges not refreshed", extra={"error": type(exc).__name__})


class _Page(Collector):
    """Families already collected and merged, for ``generate_latest``."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry()
        registry.register(self)
        return registry
