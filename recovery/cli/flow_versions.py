"""``recovery flows export DIR`` / ``import DIR``: live flow versions to YAML files and back (one per flow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.cli import versioned_files
from recovery.cli.versioned_files import ConfigOption, SourceKind
from recovery.clock import SystemClock
from recovery.errors import RecoveryError
from recovery.rules.flow_desk import FlowDesk, FlowRejected
from recovery.settings import Settings

flows_app = typer.Typer(no_args_is_help=True)


@dataclass(frozen=True)
class FlowFiles:
    """Flows as ``<name>.yaml`` files, saved through the flow desk (each checked before any is saved)."""

    desk: FlowDesk

    def path_in(self, folder: Path, key: str) -> Path:
        return folder / f"{key}.yaml"

    def keys_in(self, folder: Path) -> list[str]:
        return [path.stem for path in sorted(folder.glob("*.yaml"))]

    async def live(self) -> dict[str, str]:
        return {row["name"]: (await self.desk.read(row["name"]))["source"] for row in await self.desk.listing()}

    async def save_checked(self, changes: dict[str, str], created_by: str) -> dict[str, int]:
        for name, text in changes.items():
            await self.desk.check(name, text)  # FlowRejected before anything is saved
        return {name: await self.desk.save(name, text, created_by, "import") for name, text in changes.items()}


def _open(engine: AsyncEngine, settings: Settings) -> FlowFiles:
    return FlowFiles(FlowDesk(engine=engine, settings=settings, clock=SystemClock()))


def _refusal(exc: RecoveryError) -> list[str] | None:
    if not isinstance(exc, FlowRejected):
        return None
    return [f"line {error.line}: {error.message}" for error in exc.errors]


FLOWS = SourceKind(noun="flows", open=_open, refusal=_refusal)


@flows_app.command("export")
def export_command(
    directory: Path = typer.Argument(..., help="Folder to write the live flows into (one <name>.yaml each)."),
    config: Path | None = ConfigOption,
) -> None:
    """Write the live version of every flow to DIRECTORY."""
    versioned_files.export_command(FLOWS, directory, config)


@flows_app.command("import")
def import_command(
    directory: Path = typer.Argument(..., help="Folder of <name>.yaml flows (e.g. an export)."),
    config: Path | None = ConfigOption,
) -> None:
    """Save the flows of DIRECTORY that differ from the live ones as new versions, if the flow check passes."""
    versioned_files.import_command(FLOWS, directory, config)
