"""The flow check, the same for ``recovery check``, the flows API, the studio and start-up: problems by line.

Beyond the flow's own shape (``flows.py``: channel, ``when``, durations, weights > 0, offers) it knows the
templates (every variant's template in every store language) and the channels' provider settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recovery.channels.requirements import missing_provider_settings
from recovery.errors import ConfigError
from recovery.render.files import discover
from recovery.rules.flows import Flow, Flows, load_flows_yaml, parse_flows_data
from recovery.rules.yaml_positions import Path_, line_of
from recovery.settings import Settings
from recovery.states import ChannelName

_TEMPLATE_PATH = re.compile(r"(?P<locale>[a-z]{2,3})/(?P<name>[a-z][a-z0-9_]*)\.(?P<channel>email|sms)\.[a-z]+")
_LINE = re.compile(r"^(?P<source>.*?):(?P<line>\d+): (?P<message>.*)$")


@dataclass(frozen=True, kw_only=True)
class FlowProblem:
    """One reason a flow is refused, at its 1-based line in the source checked."""

    line: int
    message: str
    # "provider": a channel without its provider settings (``recovery run`` only warns on those).
    kind: str = "flow"


@dataclass(frozen=True, kw_only=True)
class TemplateCatalogue:
    """Which templates exist: (language, name, channel), from the files and the saved versions."""

    entries: frozenset[tuple[str, str, str]]

    @property
    def names(self) -> set[str]:
        return {name for _, name, _ in self.entries}

    @property
    def languages(self) -> set[str]:
        return {locale for locale, _, _ in self.entries}


def catalogue_of(templates_dir: Path, saved_paths: Iterable[str] = ()) -> TemplateCatalogue:
    """The templates of ``templates_dir`` plus those only saved in the database (e.g. ``it/...``)."""
    found: set[tuple[str, str, str]] = set()
    if templates_dir.is_dir():
        found |= {(f.locale, f.name, str(f.channel)) for f in discover(templates_dir)}
    for path in saved_paths:
        match = _TEMPLATE_PATH.fullmatch(path)
        if match:
            found.add((match["locale"], match["name"], match["channel"]))
    return TemplateCatalogue(entries=frozenset(found))


def check_flows_text(
    text: str, *, catalogue: TemplateCatalogue | None, settings: Settings | None
) -> tuple[Flows | None, list[FlowProblem]]:
    """The flows of a whole flows file, or the problems that refuse it."""
    try:
        data, lines = load_flows_yaml(text, "flows")
    except ConfigError as exc:
        return None, _problems(exc)
    return _check(data or {"flows": []}, lines, catalogue, settings)


def check_flow_source(
    source: str, *, name: str | None, catalogue: TemplateCatalogue | None, settings: Settings | None
) -> tuple[Flow | None, list[FlowProblem]]:
    """One flow's YAML (the mapping under ``flows:``), or the problems that refuse it, by line in ``source``."""
    try:
        data, lines = load_flows_yaml(source, "flow")
    except ConfigError as exc:
        return None, _problems(exc)
    if not isinstance(data, dict):
        return None, [FlowProblem(line=1, message="a flow is a mapping with name, trigger and steps")]
    if name is not None and data.get("name") != name:
        found = data.get("name")
        message = f"the flow's name is {found!r} but it is saved as {name!r}: they must be the same"
        return None, [FlowProblem(line=line_of(lines, ("name",)), message=message)]
    wrapped = {("flows", 0, *path): line for path, line in lines.items()} | {("flows",): 1, ("flows", 0): 1}
    flows, problems = _check({"flows": [data]}, wrapped, catalogue, settings)
    return (flows.flows[0] if flows else None), problems


def _check(
    data: Any, lines: dict[Path_, int], catalogue: TemplateCatalogue | None, settings: Settings | None
) -> tuple[Flows | None, list[FlowProblem]]:
    known = catalogue.names if catalogue is not None else None
    try:
        flows = parse_flows_data(data, lines, source="flows", templates=known)
    except ConfigError as exc:
        return None, _problems(exc)
    problems = _language_problems(flows, lines, catalogue) if catalogue is not None else []
    if settings is not None:
        problems += _provider_problems(flows, lines, settings)
    return (None if problems else flows), sorted(problems, key=lambda p: p.line)


def _problems(exc: ConfigError) -> list[FlowProblem]:
    found = []
    for text in str(exc).splitlines():
        match = _LINE.match(text)
        found.append(
            FlowProblem(line=int(match["line"]), message=match["message"])
            if match
            else FlowProblem(line=1, message=text)
        )
    return found


def _language_problems(flows: Flows, lines: dict[Path_, int], catalogue: TemplateCatalogue) -> list[FlowProblem]:
    """A variant whose template is missing in one of the languages the shop writes in."""
    problems = []
    for fi, flow in enumerate(flows.flows):
        for si, step in enumerate(flow.steps):
            channel = ChannelName.SMS.value if step.channel == ChannelName.CALLBACK else step.channel.value
            for vi, variant in enumerate(step.variants or []):
                missing = sorted(
                    lang for lang in catalogue.languages if (lang, variant.template, channel) not in catalogue.entries
                )
                if missing:
                    line = line_of(lines, ("flows", fi, "steps", si, "variants", vi, "template"))
                    problems.append(
                        FlowProblem(
                            line=line,
                            message=f"flow {flow.name!r}: step {step.name!r}: variant {variant.name!r}: "
                            f"template {variant.template!r} has no {channel} version in {', '.join(missing)}",
                        )
                    )
    return problems


def _provider_problems(flows: Flows, lines: dict[Path_, int], settings: Settings) -> list[FlowProblem]:
    """A step whose channel (or fallback) has no provider settings, at the line of that field."""
    return [
        FlowProblem(
            line=line_of(lines, ("flows", found.flow_index, "steps", found.step_index, found.field)),
            message=found.message,
            kind="provider",
        )
        for found in missing_provider_settings(settings, flows)
    ]
