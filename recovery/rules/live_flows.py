"""Live flows: the flows file (version 0) overlaid with the newest saved versions, refreshed by a cheap poll.

New journeys start with the newest version of each flow; a running journey reads the version it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recovery.rules import flow_rows
from recovery.rules.flow_book import FlowBook
from recovery.rules.flow_check import check_flow_source
from recovery.rules.flow_rows import FlowVersion
from recovery.rules.flows import Flow, Flows

log = logging.getLogger(__name__)

# Saved versions reach every replica within this; the contract promises 10 s.
DEFAULT_REFRESH = timedelta(seconds=3)


def flow_from_row(row: FlowVersion) -> Flow | None:
    """The flow a saved version describes (checked when saved), labelled with its version."""
    flow, _problems = check_flow_source(row.source, name=row.name, catalogue=None, settings=None)
    if flow is None:
        log.error("saved flow version does not load", extra={"flow": row.name, "version": row.version})
        return None
    return flow.at_version(row.version, enabled=row.enabled)


class LiveFlows(FlowBook):
    """The flows new journeys start with now; any version a running journey needs, loaded once."""

    def __init__(self, file_flows: Flows) -> None:
        self.file_flows = file_flows
        self._current = file_flows
        self._versions: dict[tuple[str, int], Flow] = {}
        self._marker: tuple[int, int] | None = None

    def current(self) -> Flows:
        return self._current

    async def refresh(self, engine: AsyncEngine) -> bool:
        """Reload when a version was saved since the last look; ``True`` when the flows changed."""
        async with engine.connect() as conn:
            marker = await flow_rows.FLOW_VERSIONS.marker(conn)
            if marker == self._marker:
                return False
            live = await flow_rows.FLOW_VERSIONS.live_versions(conn)
        by_name = {flow.name: flow for flow in self.file_flows.flows}
        for name, row in sorted(live.items()):
            flow = self._versions.get((name, row.version)) or flow_from_row(row)
            if flow is not None:
                self._versions[(name, row.version)] = flow
                by_name[name] = flow
        self._current = Flows.model_construct(flows=list(by_name.values()))
        self._marker = marker
        log.info("flow versions loaded", extra={"versions": len(live)})
        return True

    async def flow_of(self, conn: AsyncConnection, name: str, version: int) -> Flow | None:
        if version == 0:
            return self.file_flows.get(name)
        found = self._versions.get((name, version))
        if found is None:
            row = await flow_rows.FLOW_VERSIONS.get_version(conn, name, version)
            found = flow_from_row(row) if row is not None else None
            if found is not None:
                self._versions[(name, version)] = found
        return found

    async def run(self, engine: AsyncEngine, stop: asyncio.Event, every: timedelta = DEFAULT_REFRESH) -> None:
        """Poll until ``stop`` is set; a failed poll (database down) is retried at the next tick."""
        while not stop.is_set():
            try:
                await self.refresh(engine)
            except Exception:
                log.warning("flow refresh failed; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every.total_seconds())
