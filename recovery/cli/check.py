"""``recovery check``: every problem in configuration, flows and templates, as file:line lines."""

from __future__ import annotations

from dataclasses import dataclass

from recovery.channels.requirements import missing_channel_settings, unset_keys
from recovery.errors import ConfigError
from recovery.render.check import Severity, find_template_problems
from recovery.render.files import discover
from recovery.rules import load_flows
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.stores import store_problems


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
        # A dry run (outbox) sends nothing: only a provider that really sends needs the shop's identity.
        providers = settings.channels.transport == "providers"
        errors.extend(
            store_problems(
                settings,
                flows,
                email_configured=providers and not unset_keys(settings, ChannelName.EMAIL),
                sms_configured=providers and not unset_keys(settings, ChannelName.SMS),
            )
        )
    if not settings.security.link_secret:
        warnings.append("security.link_secret is not set: `recovery run` will refuse to start (only `demo` runs)")
    for problem in find_template_problems(
        templates_dir,
        templates_dir / "samples",
        max_sms_segments=settings.channels.sms.max_segments,
        public_url=settings.http.public_url,
    ):
        (errors if problem.severity == Severity.ERROR else warnings).append(str(problem))
    return CheckReport(errors=errors, warnings=warnings, unconfigured=unconfigured)
