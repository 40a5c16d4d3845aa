"""``recovery templates``: list templates and preview one against a sample cart."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from recovery.cli.defaults import fallback_overrides
from recovery.errors import ConfigError
from recovery.render.samples import Sample, load_sample, load_samples, preview_track
from recovery.render.short_links import length_probe
from recovery.render.templates import RenderedMessage, language_of, load_templates
from recovery.settings import config_path, load_settings

templates_app = typer.Typer(help="List and preview message templates.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

TemplatesDirOption = typer.Option(
    None, "--templates-dir", help="Directory of templates (default: templates_dir of the configuration)."
)
ConfigOption = typer.Option(
    None, "--config", "-c", help="YAML configuration file (default: $RECOVERY_CONFIG or config/recovery.yaml)."
)


class PreviewChannel(StrEnum):
    """Channels a template can be previewed for."""

    EMAIL = "email"
    SMS = "sms"


# A typical public URL's length, for counting SMS segments with real-length short links.
PREVIEW_PUBLIC_URL = "https://recovery.example.com"


def _templates_dir(explicit: Path | None, config: Path | None) -> Path:
    """``--templates-dir``, else the configured one: file, RECOVERY_TEMPLATES_DIR, or the shipped templates."""
    if explicit is not None:
        return explicit
    # The same resolution as ``recovery run``, so a preview shows what the service would send.
    settings = load_settings(config, **fallback_overrides(config_path(config) is not None))
    return settings.templates_dir


def _pick_sample(templates_dir: Path, sample: Path | None, locale: str | None) -> Sample:
    """The given sample, else the first sample in the requested language, else the first sample."""
    if sample is not None:
        return load_sample(sample)
    samples = load_samples(templates_dir / "samples")
    if not samples:
        raise ConfigError(f"{templates_dir / 'samples'}: no *.json sample to preview with; pass --sample")
    wanted = language_of(locale)
    matching = [s for s in samples if wanted and language_of(s.customer_locale) == wanted]
    return (matching or samples)[0]


def _show(message: RenderedMessage, sample: Sample, name: str, channel: PreviewChannel) -> None:
    console.print(
        Text(f"{name} · {channel} · locale {message.locale} · sample {sample.name}", style="bold"),
    )
    if message.subject is not None:
        console.print(Panel(Text(message.subject), title="subject", title_align="left"))
    console.print(Panel(Text(message.text), title="text", title_align="left"))
    if message.sms is not None:
        table = Table("encoding", "segments", "characters", "within budget")
        within = Text("no", style="red") if message.sms.over_limit else Text("yes", style="green")
        table.add_row(str(message.sms.encoding), str(message.sms.segments), str(message.sms.characters), within)
        console.print(table)


@templates_app.command("list")
def list_templates(templates_dir: Path | None = TemplatesDirOption, config: Path | None = ConfigOption) -> None:
    """Every template with its channels and locales."""
    try:
        templates = load_templates(_templates_dir(templates_dir, config))
    except ConfigError as exc:
        errors.print(Text(f"error: {exc}", style="red"))
        raise typer.Exit(1) from exc
    table = Table("template", "channel", "locales")
    for info in templates.names():
        table.add_row(info.name, info.channel, ", ".join(info.locales))
    console.print(table)


@templates_app.command()
def preview(
    name: str = typer.Argument(..., help="Template name, e.g. cart_reminder."),
    locale: str | None = typer.Option(None, "--locale", help="Shopper locale, e.g. fr or fr-FR."),
    channel: PreviewChannel = typer.Option(PreviewChannel.EMAIL, "--channel", help="email or sms."),
    sample: Path | None = typer.Option(None, "--sample", help="Sample JSON (default: one from samples/)."),
    html: Path | None = typer.Option(None, "--html", help="Write the email's HTML to this file."),
    templates_dir: Path | None = TemplatesDirOption,
    config: Path | None = ConfigOption,
) -> None:
    """Render NAME against a sample cart; links show their target instead of a signed token."""
    try:
        templates_dir = _templates_dir(templates_dir, config)
        templates = load_templates(templates_dir)
        chosen = _pick_sample(templates_dir, sample, locale)
        message = templates.render(
            name,
            channel="email" if channel is PreviewChannel.EMAIL else "sms",
            locale=locale or chosen.customer_locale,
            store_locale=chosen.store_locale,
            context=chosen.context,
            track=preview_track,
        )
        if message.sms is not None:
            # Sent, its links are short links: count the segments at that length, show the targets.
            counted = templates.render(
                name,
                channel="sms",
                locale=locale or chosen.customer_locale,
                store_locale=chosen.store_locale,
                context=chosen.context,
                track=length_probe(PREVIEW_PUBLIC_URL),
            )
            message = replace(message, sms=counted.sms)
    except ConfigError as exc:
        errors.print(Text(f"error: {exc}", style="red"))
        raise typer.Exit(1) from exc
    _show(message, chosen, name, channel)
    if html is not None:
        if message.html is None:
            errors.print(Text(f"no HTML to write: {name} has no {channel} html part", style="yellow"))
            raise typer.Exit(1)
        html.write_text(message.html, encoding="utf-8")
        console.print(Text(f"HTML written to {html}"))
