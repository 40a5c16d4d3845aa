"""``recovery check``: every problem in configuration, flows and templates, as file:line lines."""

from __future__ import annotations

from dataclasses import dataclass

from recovery.channels.requirements import missing_channel_settings
from recovery.cli.defaults import shipped_root
from recovery.errors import ConfigError
from recovery.ingest.security import ssl_context
from recovery.render.check import Severity, find_template_problems
from recovery.render.files import discover
from recovery.rules import load_flows
from recovery.settings import Settings


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    """Errors fail the check; warnings (e.g. a long SMS) are shown but pass."""

    errors: list[str]
    warnings: list[str]
    # The errors that name a channel's missing provider settings (also in ``errors``): ``check`` fails on
    # them, ``run`` only warns, since those steps' messages fail with a recorded reason and the rest works.
    unconfigured: list[str]


def run_checks(settings: Settings) -> CheckReport:
    """Validate flows (with their template names) and render every template against every sample."""
    errors: list[str] = []
    warnings: list[str] = []
    unconfigured: list[str] = []
    templates_dir = settings.templates_dir
    known = sorted({found.name for found in discover(templates_dir)}) if templates_dir.is_dir() else []
    try:
        flows = load_flows(settings.flows_file, templates=known)
    except ConfigError as exc:
        errors.extend(str(exc).splitlines())
    else:
        unconfigured = missing_channel_settings(settings, flows)
        errors.extend(unconfigured)
    try:
        ssl_context(settings.kafka.security)  # the Kafka CA and client certificate files can be read
    except ConfigError as exc:
        errors.append(str(exc))
    if not settings.security.link_secret:
        warnings.append("security.link_secret is not set: `recovery run` will refuse to start (only `demo` runs)")
    samples_dir = templates_dir / "samples"
    if templates_dir.is_dir() and not samples_dir.is_dir():
        # Templates mounted without their samples (a ConfigMap override): render against the shipped ones.
        warnings.append(f"{samples_dir}: not found; checking against the shipped samples")
        samples_dir = shipped_root() / "templates" / "samples"
    for problem in find_template_problems(
        templates_dir, samples_dir, max_sms_segments=settings.channels.sms.max_segments
    ):
        (errors if problem.severity == Severity.ERROR else warnings).append(str(problem))
    return CheckReport(errors=errors, warnings=warnings, unconfigured=unconfigured)
