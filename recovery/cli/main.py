"""The ``recovery`` command: run the service, the demo, checks, replays and reports."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import cast

import typer
from rich.console import Console
from rich.markup import escape

from recovery.app.roles import ROLES, Role
from recovery.cli.db import db_app
from recovery.cli.defaults import fallback_overrides, write_project
from recovery.cli.flow_versions import flows_app
from recovery.cli.log_setup import configure_logging
from recovery.cli.privacy import erase, purge
from recovery.cli.report import report
from recovery.cli.template_versions import export_command, import_command
from recovery.cli.templates import templates_app
from recovery.cli.validate import validate
from recovery.errors import ConfigError, RecoveryError, require_extra
from recovery.settings import Settings, config_path, load_settings

app = typer.Typer(
    help="cart-recovery: abandoned-cart recovery from Kafka events to email, SMS and callback offers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
templates_app.command("export")(export_command)
templates_app.command("import")(import_command)
app.add_typer(templates_app, name="templates", help="Preview, list, export and import message templates.")
app.add_typer(flows_app, name="flows", help="Export and import recovery flows (saved versions).")
app.add_typer(db_app, name="db", help="Database schema: upgrade to this version, print the revision.")
app.command()(report)
app.command()(erase)
app.command()(purge)
app.command()(validate)
console = Console()
errors = Console(stderr=True)

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="YAML configuration file (default: $RECOVERY_CONFIG or config/recovery.yaml).",
)


def _settings(config: Path | None) -> Settings:
    try:
        # no config file and no config/ or templates/ here: the flows and templates shipped in the package
        return load_settings(config, **fallback_overrides(config_path(config) is not None))
    except ConfigError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


def _logging(level: str, settings: Settings) -> None:
    configure_logging(level, settings.logging.format)


@app.command()
def run(
    config: Path | None = ConfigOption,
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    role: str = typer.Option(
        "all", help="all, consumer (Kafka in), scheduler (due steps, sends, outbox) or api (HTTP only)."
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="--role consumer: consumer processes, each a group member (default: two per CPU the container may use, "
        "at most kafka.partitions and what its memory limit holds, ~150 MiB + ~224 MiB per worker; 1 on SQLite).",
    ),
) -> None:
    """Consume events, run the scheduler and dispatchers: the service. Stops cleanly on SIGTERM/SIGINT."""
    from recovery.app.wiring import build_service
    from recovery.ops.worker_slot import WorkerSlot

    settings = _settings(config)
    _logging(log_level, settings)
    if role not in ROLES:
        errors.print(f"[red]error:[/] --role must be one of {', '.join(ROLES)}, not {role!r}")
        raise typer.Exit(2)
    count = _worker_count(role, workers, settings)
    _refuse_on_check_errors(settings)
    if count > 1:
        from recovery.cli.workers import supervise

        raise typer.Exit(supervise(sys.argv[1:], count))
    from recovery.ops.tracing import setup_tracing

    setup_tracing()  # only with OTEL_EXPORTER_OTLP_ENDPOINT set

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        # A worker started by `--workers N` (cli/workers.py) learns its place in the group from its supervisor.
        service = build_service(settings, role=cast(Role, role), worker=WorkerSlot.from_env(os.environ))
        await service.run(stop)

    try:
        asyncio.run(main())
    except RecoveryError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc


def _worker_count(role: str, workers: int | None, settings: Settings) -> int:
    """How many consumer processes ``run`` starts: two per allowed CPU for ``--role consumer`` by default."""
    from recovery.cli.workers import default_workers

    if role != "consumer":
        if workers not in (None, 1):
            errors.print("[red]error:[/] --workers is for --role consumer (the other roles scale by replicas)")
            raise typer.Exit(2)
        return 1
    if workers is not None:
        return workers
    # SQLite has one writer: more processes would only wait for each other.
    return 1 if settings.database.url.startswith("sqlite") else default_workers(settings.kafka.partitions)


def _refuse_on_check_errors(settings: Settings) -> None:
    """The full ``recovery check`` (flows, channel settings, every template × sample × locale) before
    anything is consumed: a broken template stops the start with the same file:line lines; a channel
    without its provider settings is a loud warning."""
    from recovery.cli.check import run_checks

    report = run_checks(settings)
    for problem in report.unconfigured:
        # Not fatal for the service: the other channels work, and these steps' messages fail with a reason.
        errors.print(f"[yellow]![/] {problem}: its messages will fail", markup=True, highlight=False, soft_wrap=True)
    fatal = [problem for problem in report.errors if problem not in report.unconfigured]
    for problem in fatal:
        errors.print(f"[red]✗[/] {problem}", markup=True, highlight=False, soft_wrap=True)
    if fatal:
        errors.print("[red]error:[/] not starting: fix the problems above (`recovery check` lists them)")
        raise typer.Exit(1)


@app.command()
def demo(
    config: Path | None = ConfigOption,
    carts: int = typer.Option(2000, min=1, max=100_000, help="How many generated shopping sessions to replay."),
    workdir: Path = typer.Option(Path("var/demo"), help="Where the demo's database and sinks go (wiped first)."),
    exit_after: bool = typer.Option(
        False, "--exit", help="Exit after the report (tests, CI, scripts); without it the pages stay up until Ctrl-C."
    ),
) -> None:
    """The main job on the embedded default: bundled broker + SQLite, a realistic replay, local sinks, report."""
    try:
        require_extra("demo", "`recovery demo`")
    except ConfigError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")  # escaped: "[demo]" is not markup
        raise typer.Exit(2) from exc
    from recovery.demo.run import run_demo

    settings = _settings(config)
    _logging("warning", settings)
    try:
        # The links printed with the report must work: the pages stay up until Ctrl-C unless told to exit.
        asyncio.run(run_demo(settings, carts=carts, workdir=workdir, console=console, stay_up=not exit_after))
    except RecoveryError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def init(
    directory: Path = typer.Argument(Path("."), help="Where to write config/ and templates/ (created if missing)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing config/ and templates/."),
) -> None:
    """Write editable copies of the default config/ and templates/ for a new deployment."""
    try:
        written = write_project(directory, force=force)
    except ConfigError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    for path in written:
        console.print(f"wrote {path}/")
    console.print(f"edit {directory / 'config' / 'recovery.yaml'}, then run `recovery check` from {directory}")


@app.command()
def check(config: Path | None = ConfigOption) -> None:
    """Validate configuration, flows and every template; exit 1 with file:line reasons."""
    from recovery.cli.check import run_checks

    try:
        settings = _settings(config)
    except typer.Exit as exc:
        # A bad configuration is what check exists to report: exit 1 like any other finding
        # (the message naming the key was printed already); other commands keep exit 2.
        raise typer.Exit(1) from exc
    report = run_checks(settings)
    for warning in report.warnings:
        errors.print(f"[yellow]![/] {warning}", markup=True, highlight=False)
    for problem in report.errors:
        errors.print(f"[red]✗[/] {problem}", markup=True, highlight=False, soft_wrap=True)
    if report.errors:
        raise typer.Exit(1)
    console.print("[green]✓[/] configuration, flows and templates are valid")


@app.command()
def replay(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL file, one event per line."),
    config: Path | None = ConfigOption,
    bootstrap_servers: str | None = typer.Option(
        None,
        help="Broker to publish to (default: kafka.bootstrap_servers; 'embedded' is not reachable from here).",
    ),
) -> None:
    """Publish events from a file to the configured topics, keyed by cart id (testing, backfills)."""
    from rich.progress import Progress

    from recovery.ingest.kafka import Producer
    from recovery.ingest.replay import publish_lines, read_lines

    settings = _settings(config)
    servers = bootstrap_servers or settings.kafka.bootstrap_servers
    if servers == "embedded":
        errors.print("[red]error:[/] the embedded broker lives inside `recovery run`; pass --bootstrap-servers")
        raise typer.Exit(2)
    lines = read_lines(file)

    async def main() -> int:
        producer = Producer(servers, settings.kafka.security)
        await producer.start()
        try:
            with Progress(console=console) as progress:
                task = progress.add_task(f"publishing {file.name}", total=len(lines))
                return await publish_lines(
                    producer, lines, settings.kafka.topics, progress=lambda n: progress.advance(task, n)
                )
        finally:
            await producer.stop()

    try:
        sent = asyncio.run(main())
    except RecoveryError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"published {sent} events from {file}")


if __name__ == "__main__":  # pragma: no cover
    app()
