"""What the Flows API, the studio and ``recovery flows`` do: list, read, save (checked), history, rollback."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.clock import Clock
from recovery.errors import RecoveryError
from recovery.render import template_rows
from recovery.rules import flow_rows
from recovery.rules.flow_check import FlowProblem, catalogue_of, check_flow_source
from recovery.rules.flow_source import flow_sources
from recovery.rules.flows import Flow
from recovery.settings import Settings


class FlowRejected(RecoveryError):
    """The candidate flow fails the flow check; nothing was saved."""

    def __init__(self, errors: list[FlowProblem]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"line {error.line}: {error.message}" for error in errors))


class UnknownFlow(RecoveryError):
    """No flow (in the file or saved) has this name, or it has no such version."""


@dataclass(frozen=True, kw_only=True)
class FlowDesk:
    """Flow versions over one database and one flows file; version 0 of a flow is its part of the file."""

    engine: AsyncEngine
    settings: Settings
    clock: Clock

    def file_sources(self) -> dict[str, str]:
        """Each flow of the flows file as its own YAML (version 0)."""
        return flow_sources(self.settings.flows_file.read_text(encoding="utf-8"))

    async def listing(self) -> list[dict[str, Any]]:
        """Every flow with its live version (0: the file) and whether new journeys enter it."""
        async with self.engine.connect() as conn:
            live = await flow_rows.FLOW_VERSIONS.live_versions(conn)
        files = self.file_sources()
        rows = []
        for name in sorted(set(files) | set(live)):
            saved = live.get(name)
            enabled = saved.enabled if saved else _file_enabled(files[name])
            rows.append(
                {
                    "name": name,
                    "version": saved.version if saved else 0,
                    "updated_at": saved.created_at.isoformat() if saved else None,
                    "updated_by": saved.created_by if saved else None,
                    "enabled": enabled,
                }
            )
        return rows

    async def read(self, name: str) -> dict[str, Any]:
        """The live source of ``name``."""
        async with self.engine.connect() as conn:
            saved = await flow_rows.FLOW_VERSIONS.history(conn, name)
        if saved:
            return {"name": name, "source": saved[0].source, "version": saved[0].version, "enabled": saved[0].enabled}
        source = self.file_sources().get(name)
        if source is None:
            raise UnknownFlow(f"no flow {name!r}")
        return {"name": name, "source": source, "version": 0, "enabled": _file_enabled(source)}

    async def check(self, name: str, source: str) -> Flow:
        """The flow ``source`` describes, through the full flow check; ``FlowRejected`` otherwise."""
        async with self.engine.connect() as conn:
            saved_templates = await template_rows.TEMPLATE_VERSIONS.live_versions(conn)
        catalogue = catalogue_of(self.settings.templates_dir, saved_templates)
        flow, problems = check_flow_source(source, name=name, catalogue=catalogue, settings=self.settings)
        if flow is None:
            raise FlowRejected(problems)
        return flow

    async def save(self, name: str, source: str, by: str, comment: str | None, enabled: bool | None = None) -> int:
        """Save after the full check (a new name creates the flow); ``FlowRejected`` and nothing saved otherwise."""
        flow = await self.check(name, source)
        if enabled is None:
            # A disabled flow stays disabled through an edit; ``enabled: false`` in the source disables it.
            enabled = flow.enabled and await self._enabled(name, default=True)
        return await flow_rows.save_version(
            self.engine, name=name, source=source, enabled=enabled, created_by=by, comment=comment,
            now=self.clock.now(),
        )  # fmt: skip

    async def versions(self, name: str) -> list[dict[str, Any]]:
        """Saved versions newest first, then the file as version 0 (when the file has the flow)."""
        async with self.engine.connect() as conn:
            saved = await flow_rows.FLOW_VERSIONS.history(conn, name)
        in_file = name in self.file_sources()
        if not saved and not in_file:
            raise UnknownFlow(f"no flow {name!r}")
        rows = [
            {
                "version": row.version,
                "created_at": row.created_at.isoformat(),
                "created_by": row.created_by,
                "comment": row.comment,
                "enabled": row.enabled,
                "active": index == 0,
            }
            for index, row in enumerate(saved)
        ]
        if in_file:
            rows.append({"version": 0, "created_at": None, "created_by": None, "comment": "file", "active": not saved})
        return rows

    async def source_of(self, name: str, version: int) -> str:
        """The source of one version (0: the file); ``UnknownFlow`` when it does not exist."""
        if version == 0:
            found = self.file_sources().get(name)
        else:
            async with self.engine.connect() as conn:
                row = await flow_rows.FLOW_VERSIONS.get_version(conn, name, version)
            found = row.source if row else None
        if found is None:
            raise UnknownFlow(f"flow {name!r} has no version {version}")
        return found

    async def rollback(self, name: str, version: int, by: str) -> int:
        """A new version with ``version``'s source (checked again: templates may have changed since)."""
        return await self.save(name, await self.source_of(name, version), by, f"rollback to version {version}")

    async def set_enabled(self, name: str, enabled: bool, by: str) -> int:
        """A new version with the live source, enabled or disabled for new journeys."""
        current = await self.read(name)
        comment = "enabled" if enabled else "disabled"
        return await self.save(name, current["source"], by, comment, enabled=enabled)

    async def diff(self, name: str, old: int, new: int) -> str:
        """A unified diff from version ``old`` to version ``new``."""
        before, after = await self.source_of(name, old), await self.source_of(name, new)
        lines = difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), f"{name} v{old}", f"{name} v{new}"
        )
        return "".join(lines)

    async def _enabled(self, name: str, *, default: bool) -> bool:
        try:
            return bool((await self.read(name))["enabled"])
        except UnknownFlow:
            return default


def _file_enabled(source: str) -> bool:
    """Whether the file's flow is enabled (``enabled: false`` switches it off)."""
    data = yaml.safe_load(source)
    return not (isinstance(data, dict) and data.get("enabled") is False)
