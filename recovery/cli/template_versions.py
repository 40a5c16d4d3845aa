"""``recovery templates export DIR`` / ``import DIR``: live versions to files and back, for teams using git."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.cli import versioned_files
from recovery.cli.versioned_files import ConfigOption, SourceKind
from recovery.errors import RecoveryError
from recovery.render.versions import TemplateRejected, current_source, editable_paths, save_many_checked
from recovery.settings import Settings


@dataclass(frozen=True)
class TemplateFiles:
    """Templates laid out as under templates/, saved as one set through the full template check."""

    engine: AsyncEngine
    templates_dir: Path

    def path_in(self, folder: Path, key: str) -> Path:
        return folder / key

    def keys_in(self, folder: Path) -> list[str]:
        return [path for path in editable_paths(self.templates_dir) if (folder / path).is_file()]

    async def live(self) -> dict[str, str]:
        return {
            path: (await current_source(self.engine, self.templates_dir, path))[0]
            for path in editable_paths(self.templates_dir)
        }

    async def save_checked(self, changes: dict[str, str], created_by: str) -> dict[str, int]:
        now = datetime.now(UTC)
        return await save_many_checked(self.engine, self.templates_dir, changes, created_by=created_by, now=now)


def _open(engine: AsyncEngine, settings: Settings) -> TemplateFiles:
    return TemplateFiles(engine, settings.templates_dir)


def _refusal(exc: RecoveryError) -> list[str] | None:
    return [error.message for error in exc.errors] if isinstance(exc, TemplateRejected) else None


TEMPLATES = SourceKind(noun="templates", open=_open, refusal=_refusal)


def export_command(
    directory: Path = typer.Argument(..., help="Folder to write the live templates into."),
    config: Path | None = ConfigOption,
) -> None:
    """Write the live version of every template to DIRECTORY (same layout as templates/)."""
    versioned_files.export_command(TEMPLATES, directory, config)


def import_command(
    directory: Path = typer.Argument(..., help="Folder laid out like templates/ (e.g. an export)."),
    config: Path | None = ConfigOption,
) -> None:
    """Save the files of DIRECTORY that differ from the live ones as new versions, if the full check passes."""
    versioned_files.import_command(TEMPLATES, directory, config)
