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

from recovery.render.bounds import render_budget
from recovery.render.files import language_of
from recovery.render.sandbox import MessageEnvironment
from recovery.stores import StoreDirectory

FILE_NAME = "_agent_lines.txt"
log = logging.getLogger(__name__)


class AgentLines:
    """Renders the suggested line for a task in the agent's page language (else English)."""

    def __init__(self, templates_dir: Path, stores: StoreDirectory | None = None) -> None:
        self._dir = templates_dir
        # The task's store decides which other ways to pay the line may suggest (its payment_methods only).
        self._stores = stores or StoreDirectory()
        self._envs: dict[str, MessageEnvironment] = {}

    def _env(self, language: str) -> MessageEnvironment:
        if language not in self._envs:
            # Sandboxed and bounded like the message templates: marketers write these files.
            self._envs[language] = MessageEnvironment(
                loader=FileSystemLoader(self._dir / language), autoescape=False, auto_reload=True
            )
        return self._envs[language]

    def line(self, language: str, task: Mapping[str, Any], methods: Sequence[str] | None = None) -> str | None:
        """The suggested line for ``task`` (the contract's Task), or ``None`` when no file fits; ``methods``,
        when given, are the store's payment methods (else the task's store says)."""
        for candidate in dict.fromkeys([language_of(language) or "en", "en"]):
            if not (self._dir / candidate / FILE_NAME).is_file():
                continue
            try:
                with render_budget():  # sizes, loop turns and the render deadline, as for messages
                    module = self._env(candidate).get_template(FILE_NAME).module
                    store = self._store_of(task)
                    if methods is not None:  # the caller knows the store's methods: they decide
                        store = {**store, "payment_methods": list(methods)}
                    text = str(module.line(task.get("payment"), task.get("customer") or {}, store))  # type: ignore[attr-defined]
            except (TemplateError, AttributeError, TypeError):
                log.warning("agent lines template failed", extra={"file": f"{candidate}/{FILE_NAME}"})
                return None
            return " ".join(text.split()) or None
        return None

    def _store_of(self, task: Mapping[str, Any]) -> Mapping[str, Any]:
        """The task's store as templates see it: a full record given in the task is used as it is; else the
        store's id (the ``Task``'s ``store.id``, or a bare id) is looked up in the configured stores."""
        store = task.get("store")
        if isinstance(store, Mapping):
            if "payment_methods" in store:
                return store
            store = store.get("id")
        return self._stores.get(store).template_view()
