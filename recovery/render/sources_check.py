"""The full template check on sources held in memory (e.g. versions saved through an API).

``recovery check`` and ``recovery run`` check the templates directory; this runs the very same check
(every template × every sample × every locale) on ``{relative path: source}``, so both always agree.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from recovery.errors import ConfigError
from recovery.render.check import Severity, find_template_problems


@dataclass(frozen=True, kw_only=True)
class SourceError:
    """One error, located in the caller's own paths: ``en/cart_offer.email.html``, line 3."""

    path: str | None
    line: int | None
    message: str


def _safe_relative(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ConfigError(f"{path!r}: a template path must be relative, like en/cart_offer.email.html")
    return relative


def check_template_sources(sources: Mapping[str, str], samples: Mapping[str, str]) -> list[SourceError]:
    """Errors of templates given as ``{"en/cart_offer.email.html": source}`` rendered against samples
    given as ``{"en_cart.json": json text}``; an empty list means every template renders everywhere."""
    with tempfile.TemporaryDirectory(prefix="recovery-templates-") as folder:
        root = Path(folder)
        for path, source in sources.items():
            target = root / _safe_relative(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source, encoding="utf-8")
        samples_dir = root / "samples"
        samples_dir.mkdir(exist_ok=True)
        for name, text in samples.items():
            (samples_dir / _safe_relative(name).name).write_text(text, encoding="utf-8")
        found = find_template_problems(root, samples_dir)
        prefix = f"{root}/"
        return [
            SourceError(
                path=problem.path.removeprefix(prefix) if problem.path else None,
                line=problem.line,
                message=(problem.detail or problem.message).replace(prefix, ""),
            )
            for problem in found
            if problem.severity == Severity.ERROR
        ]
