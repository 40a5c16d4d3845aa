"""The line an agent may say, per payment failure reason: ``templates/<lang>/_agent_lines.txt`` (editable).

Marketers edit these files like the message templates; a missing or broken file means no suggestion,
never a failing page. A macro ``line(payment, customer, methods)`` gets the store's payment methods
(``None`` when unknown) so it suggests only what the store accepts; an older two-argument macro still works.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from recovery.render.files import language_of

FILE_NAME = "_agent_lines.txt"
log = logging.getLogger(__name__)


class AgentLines:
    """Renders the suggested line for a task in the agent's page language (else English)."""

    def __init__(self, templates_dir: Path) -> None:
        self._dir = templates_dir
        self._envs: dict[str, SandboxedEnvironment] = {}

    def _env(self, language: str) -> SandboxedEnvironment:
        if language not in self._envs:
            # Sandboxed like the message templates: marketers write these files.
            self._envs[language] = SandboxedEnvironment(
                loader=FileSystemLoader(self._dir / language), autoescape=False, auto_reload=True
            )
        return self._envs[language]

    def line(self, language: str, task: Mapping[str, Any], methods: Sequence[str] | None = None) -> str | None:
        """The suggested line for ``task`` (the contract's Task), or ``None`` when no file fits."""
        for candidate in dict.fromkeys([language_of(language) or "en", "en"]):
            if not (self._dir / candidate / FILE_NAME).is_file():
                continue
            try:
                macro = self._env(candidate).get_template(FILE_NAME).module.line  # type: ignore[attr-defined]
                args: list[Any] = [task.get("payment"), task.get("customer") or {}]
                if "methods" in getattr(macro, "arguments", ()):
                    args.append(list(methods) if methods is not None else None)
                text = str(macro(*args))
            except (TemplateError, AttributeError, TypeError):
                log.warning("agent lines template failed", extra={"file": f"{candidate}/{FILE_NAME}"})
                return None
            return " ".join(text.split()) or None
        return None
