"""``recovery check``: every problem in configuration, flows and templates, as file:line lines."""

from __future__ import annotations

from dataclasses import dataclass

from recovery.channels.requirements import missing_channel_settings
from recovery.errors import ConfigError
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


MIN_SECRET_CHARS = 32


def security_problems(settings: Settings) -> list[str]:
    """Secrets too short to resist guessing, and a helpdesk webhook without a secret of its own."""
    problems: list[str] = []
    security = settings.security
    for key, secret in (
        ("security.link_secret", security.link_secret),
        ("security.previous_link_secret", security.previous_link_secret),
        ("callbacks.webhook_secret", settings.callbacks.webhook_secret),
    ):
        if secret and len(secret) < MIN_SECRET_CHARS:
            problems.append(f"{key}: at least {MIN_SECRET_CHARS} characters are needed (a long random value)")
    short = [f"{entry.role} #{rank}" for rank, entry in enumerate(security.api_tokens.values(), 1)]
    short = [label for label, token in zip(short, security.api_tokens, strict=True) if len(token) < MIN_SECRET_CHARS]
    if short:
        problems.append(
            f"security.api_tokens: {', '.join(short)} shorter than {MIN_SECRET_CHARS} characters "
            "(tokens are guessable; use e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    if settings.callbacks.webhook_url and not settings.callbacks.webhook_secret:
        problems.append(
            "callbacks.webhook_secret is not set (env RECOVERY_CALLBACKS__WEBHOOK_SECRET) while "
            "callbacks.webhook_url is: the helpdesk webhook is signed with its own secret, never the link secret"
        )
    return problems


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
    if not settings.security.link_secret:
        warnings.append("security.link_secret is not set: `recovery run` will refuse to start (only `demo` runs)")
    errors.extend(security_problems(settings))
    for problem in find_template_problems(
        templates_dir, templates_dir / "samples", max_sms_segments=settings.channels.sms.max_segments
    ):
        (errors if problem.severity == Severity.ERROR else warnings).append(str(problem))
    return CheckReport(errors=errors, warnings=warnings, unconfigured=unconfigured)
