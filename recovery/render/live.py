"""Live templates: the default files overlaid with the newest saved versions, refreshed by a cheap poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.errors import ConfigError
from recovery.render import template_rows
from recovery.render.offload import in_thread
from recovery.render.templates import Templates, load_templates

log = logging.getLogger(__name__)

# Saved versions reach every replica within this; the issue promises 10 s.
DEFAULT_REFRESH = timedelta(seconds=3)


def version_label(name: str, channel: str, locale: str, parts: tuple[str, ...], versions: Mapping[str, int]) -> str:
    """What a message records: ``fr/cart_reminder.email html@3 subject@0 txt@0`` (``@0`` is the file)."""
    numbered = " ".join(f"{part}@{versions.get(f'{locale}/{name}.{channel}.{part}', 0)}" for part in sorted(parts))
    return f"{locale}/{name}.{channel} {numbered}"


class LiveTemplates:
    """The templates every message renders with now, and the version number of each overridden path."""

    def __init__(self, templates_dir: Path, templates: Templates | None = None) -> None:
        self.templates_dir = templates_dir
        self.templates = templates or load_templates(templates_dir)
        self.versions: dict[str, int] = {}
        self._marker: tuple[int, int] | None = None

    async def refresh(self, engine: AsyncEngine) -> bool:
        """Reload when a version was saved since the last look; ``True`` when the templates changed."""
        async with engine.connect() as conn:
            marker = await template_rows.TEMPLATE_VERSIONS.marker(conn)
            if marker == self._marker:
                return False
            live = await template_rows.TEMPLATE_VERSIONS.live_versions(conn)
        sources = {path: row.source for path, row in live.items()}
        try:
            # Compiling every template takes a while: in a render thread, so the loop keeps serving.
            templates = await in_thread(load_templates, self.templates_dir, sources)
        except ConfigError:
            # Saves are checked first, so this means the files changed under a version: keep what works.
            log.exception("saved template versions do not load; keeping the previous templates")
            self._marker = marker
            return False
        self.templates = templates
        self.versions = {path: row.version for path, row in live.items()}
        self._marker = marker
        log.info("template versions loaded", extra={"versions": len(live)})
        return True

    async def run(self, engine: AsyncEngine, stop: asyncio.Event, every: timedelta = DEFAULT_REFRESH) -> None:
        """Poll until ``stop`` is set; a failed poll (database down) is retried at the next tick."""
        while not stop.is_set():
            try:
                await self.refresh(engine)
            except Exception:
                log.warning("template refresh failed; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every.total_seconds())
