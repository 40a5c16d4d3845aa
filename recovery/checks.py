"""``recovery check``: every problem in configuration, flows and templates, as file:line lines."""

from __future__ import annotations

from recovery.errors import ConfigError
from recovery.rules import load_flows
from recovery.settings import Settings


def run_checks(settings: Settings) -> list[str]:
    """Problems found (empty when everything is valid)."""
    problems: list[str] = []
    try:
        load_flows(settings.flows_file)
    except ConfigError as exc:
        problems.extend(str(exc).splitlines())
    return problems
