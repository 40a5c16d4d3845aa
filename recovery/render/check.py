"""``recovery check`` for templates: compile every file, render every template against every sample."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from recovery.errors import ConfigError
from recovery.render.files import RenderTimedOut, TemplateError, discover
from recovery.render.samples import Sample, load_samples
from recovery.render.short_links import length_probe
from recovery.render.signed_links import LinkSigner
from recovery.render.sms_text import describe_sms, non_gsm_characters
from recovery.render.templates import TemplateInfo, Templates

# Signed links are long (email); SMS links are short links: both are measured at their real length.
_PROBE_PUBLIC_URL = "https://recovery.example.com"
_PROBE_MESSAGE_ID = "00000000-0000-4000-8000-000000000000:step"


class Severity(StrEnum):
    """Errors fail ``recovery check``; warnings are printed but do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One finding, already phrased as ``path:line: template 'x' locale 'fr': why``."""

    severity: Severity
    message: str
    path: str | None = None
    line: int | None = None
    detail: str | None = None

    def __str__(self) -> str:
        return self.message


def _error(message: str, source: TemplateError | None = None) -> Problem:
    if source is None:
        return Problem(severity=Severity.ERROR, message=message)
    return Problem(severity=Severity.ERROR, message=message, path=source.path, line=source.line, detail=source.detail)


def _warning(path: Path | str, message: str) -> Problem:
    return Problem(severity=Severity.WARNING, message=f"{path}: warning: {message}")


def _sms_warning(folder: Path, info: TemplateInfo, locale: str, sample: Sample, text: str) -> Problem:
    sms = describe_sms(text)
    forcing = non_gsm_characters(text)
    why = f"; UCS-2 because of {' '.join(forcing)!r}" if forcing else ""
    return _warning(
        folder / locale / f"{info.name}.sms.txt",
        f"template '{info.name}' locale '{locale}': SMS takes {sms.segments} segments ({sms.encoding})"
        f" with sample '{sample.name}', over the limit{why}",
    )


def _coverage(templates_dir: Path, templates: Templates) -> list[Problem]:
    """A warning for every template missing in a locale the others are written in."""
    all_locales = sorted({locale for info in templates.names() for locale in info.locales})
    return [
        _warning(templates_dir / locale, f"template '{info.name}' has no {info.channel} version in '{locale}'")
        for info in templates.names()
        for locale in all_locales
        if locale not in info.locales
    ]


def find_template_problems(
    templates_dir: Path,
    samples_dir: Path,
    max_sms_segments: int = 3,
    sources: Mapping[str, str] | None = None,
    public_url: str = _PROBE_PUBLIC_URL,
) -> list[Problem]:
    """Every error and warning of ``templates_dir`` (``sources`` override files by path, e.g. a version
    about to be saved), rendering against each sample of ``samples_dir``."""
    if not templates_dir.is_dir():
        return [_error(f"{templates_dir}: templates directory not found")]
    templates = Templates(templates_dir, discover(templates_dir), sources)
    static = templates.missing_parts() + templates.compile_problems()
    problems = [_error(str(error), error) for error in static + templates.outside_block_problems()]
    problems += _coverage(templates_dir, templates)
    problems += [_warning(templates_dir, note) for note in templates.pending]
    broken = {(error.template, error.locale) for error in static}
    # A broken layout or partial would fail every template of its locale: report it once, render none.
    broken_locales = {error.locale for error in static if error.template is None}
    try:
        samples = load_samples(samples_dir)
    except ConfigError as exc:
        return [*problems, _error(str(exc))]
    if not samples:
        problems.append(_warning(samples_dir, "no *.json samples: templates were compiled but never rendered"))
    signer = LinkSigner("length-probe-only", _PROBE_PUBLIC_URL)

    def track(target: str) -> str:
        return signer.tracked_url(_PROBE_MESSAGE_ID, target)

    # An SMS carries short links ({public_url}/s/ + code): its segments are counted with their real length.
    short = length_probe(public_url)

    # One line per mistake: a typo in a layout is one problem, not one per template and sample.
    seen: set[tuple[str | None, int | None, str]] = set()
    for info in templates.names():
        for locale in info.locales:
            if (info.name, locale) in broken or locale in broken_locales:
                continue
            for sample in samples:
                try:
                    message = templates.render(
                        info.name,
                        channel=info.channel,
                        locale=locale,
                        store_locale=None,
                        context=sample.context,
                        track=short if info.channel == "sms" else track,
                    )
                except TemplateError as exc:
                    if (exc.path, exc.line, exc.detail) not in seen:
                        seen.add((exc.path, exc.line, exc.detail))
                        problems.append(_error(f"{exc} (sample '{sample.name}')", exc))
                    if isinstance(exc, RenderTimedOut):
                        return problems  # one runaway render is enough: the others would each wait as long
                    continue
                if message.sms is not None and message.sms.segments > max_sms_segments:
                    problems.append(_sms_warning(templates_dir, info, locale, sample, message.text))
    return problems


def check_templates(templates_dir: Path, samples_dir: Path) -> list[str]:
    """Problems as printable lines; errors first, then warnings (which contain ``: warning:``)."""
    problems = find_template_problems(templates_dir, samples_dir)
    ordered = sorted(problems, key=lambda problem: problem.severity is Severity.WARNING)
    return [str(problem) for problem in ordered]
