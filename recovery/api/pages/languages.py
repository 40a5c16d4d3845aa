"""Page language: French or English chosen from ``Accept-Language``; texts are per-language dictionaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from recovery.api.pages.texts import COMMON_TEXTS

PageLanguage = Literal["en", "fr"]
LANGUAGES: tuple[PageLanguage, ...] = ("en", "fr")
DEFAULT_LANGUAGE: PageLanguage = "en"

# language -> key -> text; the texts live in ``pages/texts/`` (one module per language)
Texts = Mapping[PageLanguage, Mapping[str, str]]


def _weighted(part: str) -> tuple[str, float] | None:
    """One ``fr-CH;q=0.8`` entry as (primary language, weight), or ``None`` when malformed."""
    tag, _, params = part.strip().partition(";")
    primary = tag.strip().split("-")[0].lower()
    if not primary:
        return None
    weight = 1.0
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value)
            except ValueError:
                return None
    return primary, weight


def negotiate_language(header: str | None) -> PageLanguage:
    """The best of ``LANGUAGES`` for an ``Accept-Language`` header; English when nothing matches."""
    best: tuple[float, int, PageLanguage] | None = None
    for position, part in enumerate((header or "").split(",")):
        entry = _weighted(part)
        if entry is None or entry[1] <= 0:
            continue
        primary, weight = entry
        for language in LANGUAGES:
            # Earlier entries win ties, as the header lists preferences in order.
            if primary == language and (best is None or (weight, -position) > (best[0], best[1])):
                best = (weight, -position, language)
    return best[2] if best else DEFAULT_LANGUAGE


def texts_for(language: PageLanguage, *texts: Texts) -> dict[str, str]:
    """The merged texts of one language (later dictionaries win), falling back to English per key."""
    merged: dict[str, str] = {}
    for source in (COMMON_TEXTS, *texts):
        merged.update(source.get(DEFAULT_LANGUAGE, {}))
    for source in (COMMON_TEXTS, *texts):
        merged.update(source.get(language, {}))
    return merged
