"""Sample render contexts (``templates/samples/*.json``) for checks and previews, and the preview tracker."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from recovery.errors import ConfigError

PREVIEW_LINK_PREFIX = "https://preview.invalid/r/?to="


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One realistic render context, named after its file."""

    name: str
    path: Path
    description: str
    store_locale: str | None
    context: Mapping[str, object] = field(default_factory=dict)

    @property
    def customer_locale(self) -> str | None:
        """The shopper's locale in the sample, if it names one."""
        customer = self.context.get("customer")
        locale = customer.get("locale") if isinstance(customer, Mapping) else None
        return locale if isinstance(locale, str) else None


def load_sample(path: Path) -> Sample:
    """Read one sample file: ``{"description", "store_locale", "context": {...}}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: sample is not valid JSON: {exc.msg}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read sample: {exc.strerror}") from exc
    context = data.get("context") if isinstance(data, dict) else None
    if not isinstance(context, dict):
        raise ConfigError(f"{path}: a sample is an object with a 'context' object")
    store_locale = data.get("store_locale")
    return Sample(
        name=path.stem,
        path=path,
        description=str(data.get("description") or ""),
        store_locale=store_locale if isinstance(store_locale, str) else None,
        context=context,
    )


def load_samples(samples_dir: Path) -> list[Sample]:
    """Every ``*.json`` sample of ``samples_dir``, by file name."""
    if not samples_dir.is_dir():
        raise ConfigError(f"{samples_dir}: samples directory not found")
    return [load_sample(path) for path in sorted(samples_dir.glob("*.json"))]


def preview_track(target: str) -> str:
    """A tracker for previews that shows where each link goes instead of signing it."""
    return PREVIEW_LINK_PREFIX + quote(target, safe=":/?=&#%+,;@-._~")
