"""``recovery check``: every problem in configuration, flows and templates, as file:line lines."""

from __future__ import annotations

from dataclasses import dataclass

from recovery.adapters.requirements import format_warnings
from recovery.channels.requirements import unset_keys
from recovery.cli.defaults import shipped_root
from recovery.errors import ConfigError
from recovery.ingest.security import ssl_context
from recovery.render.check import Severity, find_template_problems
from recovery.rules.flow_check import catalogue_of, check_flows_text
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


MIN_SECRET_CHARS = 32


def security_problems(settings: Settings) -> list[str]:
    """Secrets too short to resist guessing, and a helpdesk webhook without a secret of its own."""
    problems: list[str] = []
    security = settings.security
    for key, secret in (
        ("security.link_secret", security.link_secret),
        ("security.previous_link_secret", security.previous_link_secret),
        ("callbacks.webhook_secret", settings.callbacks.webhook_secret),
        ("offers.register_secret", settings.offers.register_secret),
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
    if settings.offers.register_url and not settings.offers.register_secret:
        problems.append(
            "offers.register_secret is not set (env RECOVERY_OFFERS__REGISTER_SECRET) while offers.register_url "
            "is: the shop's discount hook is signed with its own secret, never the link secret"
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
    try:
        text = settings.flows_file.read_text(encoding="utf-8")
    except OSError as exc:
        errors.append(f"{settings.flows_file}: cannot read flows file: {exc.strerror}")
    else:
        # The same flow check as the flows API and the studio, by line of the file.
        flows, problems = check_flows_text(text, catalogue=catalogue_of(templates_dir), settings=settings)
        for found in problems:
            line = f"{settings.flows_file}:{found.line}: {found.message}"
            errors.append(line)
            if found.kind == "provider":
                unconfigured.append(line)
        if flows is None:  # refused for a provider or a language: the stores' rules still read its steps
            flows, _ = check_flows_text(text, catalogue=None, settings=None)
        if flows is not None:
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
    warnings.extend(format_warnings(settings))  # input formats' secrets and conflicts
    errors.extend(security_problems(settings))
    try:
        ssl_context(settings.kafka.security)  # the Kafka CA and client certificate files can be read
    except ConfigError as exc:
        errors.append(str(exc))
    samples_dir = templates_dir / "samples"
    if templates_dir.is_dir() and not samples_dir.is_dir():
        # Templates mounted without their samples (a ConfigMap override): render against the shipped ones.
        warnings.append(f"{samples_dir}: not found; checking against the shipped samples")
        samples_dir = shipped_root() / "templates" / "samples"
    for problem in find_template_problems(
        templates_dir,
        samples_dir,
        max_sms_segments=settings.channels.sms.max_segments,
        public_url=settings.http.public_url,
    ):
        (errors if problem.severity == Severity.ERROR else warnings).append(str(problem))
    return CheckReport(errors=errors, warnings=warnings, unconfigured=unconfigured)
