"""Worker 0 asking the other workers of its group, over loopback, for their series and their readiness."""

from __future__ import annotations

import asyncio
import logging
from typing import Self

import httpx
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from recovery.errors import NotReady
from recovery.ops.worker_slot import WorkerSlot

log = logging.getLogger(__name__)

PEER_TIMEOUT_S = 1.5  # under /readyz's and /metrics' own 2 s bound


class Peers:
    """The other workers of ``slot``'s group (worker 0's view); ``aclose`` when done."""

    def __init__(
        self,
        slot: WorkerSlot,
        *,
        timeout_s: float = PEER_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,  # tests answer for the workers
    ) -> None:
        self._slot = slot
        # One client for the process's life: making one loads the CA bundle (~30 ms of CPU here), too much for
        # every probe. Loopback only: no proxy from the environment.
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport, trust_env=False)
        self._ports: dict[int, int] = {}
        # A worker that misses one scrape keeps its last series: its counters dropping out of the sum would read
        # as a counter reset (and a false burst in rate()) when it answers again.
        self._last: dict[int, list[Metric]] = {}
        self._silent: set[int] = set()

    @property
    def indexes(self) -> range:
        return range(1, self._slot.count)

    def _port(self, index: int) -> int | None:
        if index not in self._ports and (port := self._slot.peer_port(index)) is not None:
            self._ports[index] = port  # a worker never moves: the supervisor restarts the whole group
        return self._ports.get(index)

    async def families(self) -> list[list[Metric]]:
        """Each other worker's families, as it answers ``/metrics`` now (or last did)."""
        pages = await asyncio.gather(*(self._get(index, "/metrics") for index in self.indexes))
        out = []
        for index, page in zip(self.indexes, pages, strict=True):
            families = _parsed(page)
            if families is not None:
                self._last[index] = families
                self._heard(index)
            else:
                self._missed(index)
            out.append(self._last.get(index, []))
        return out

    async def ready(self) -> bool:
        """True when every other worker answers ``/readyz`` with 200; else ``NotReady`` naming who and why."""
        answers = await asyncio.gather(*(self._get(index, "/readyz") for index in self.indexes))
        problems = []
        for index, answer in zip(self.indexes, answers, strict=True):
            if answer is None:
                problems.append(f"worker {index}: no answer" if self._port(index) else f"worker {index}: starting")
            elif answer.status_code != 200:
                problems.append(f"worker {index}: {_failing(answer)}")
        if problems:
            raise NotReady("; ".join(problems))
        return True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, index: int, path: str) -> httpx.Response | None:
        port = self._port(index)
        if port is None:
            return None
        try:
            return await self._client.get(f"http://127.0.0.1:{port}{path}")
        except httpx.HTTPError:
            return None

    def _heard(self, index: int) -> None:
        if index in self._silent:
            self._silent.discard(index)
            log.info("worker %d answers its metrics again", index, extra={"worker": index})

    def _missed(self, index: int) -> None:
        if index not in self._silent and self._port(index) is not None:
            self._silent.add(index)
            log.warning("worker %d did not answer: its last series are shown", index, extra={"worker": index})


def _parsed(page: httpx.Response | None) -> list[Metric] | None:
    """A worker's page as families; ``None`` when it did not answer one."""
    if page is None or page.status_code != 200:
        return None
    try:
        return list(text_string_to_metric_families(page.text))
    except ValueError:  # cut short (e.g. the worker stopping): as no answer
        return None


def _failing(answer: httpx.Response) -> str:
    """The checks a worker's ``/readyz`` names as failing (``service``, ``database``), else its status."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    failing = body.get("failing") if isinstance(body, dict) else None
    return ", ".join(map(str, failing)) if failing else f"HTTP {answer.status_code}"
