"""Every page text, one module per language (``en.py``, ``fr.py``); templates read them as ``t``.

A page group's texts are looked up here by language: ``render_page`` (staff pages, with ``COMMON_TEXTS``)
and ``shopper_page`` (shoppers' pages) merge them, English filling a key a language lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from recovery.api.pages.texts import en, fr

ByLanguage = Mapping[Literal["en", "fr"], Mapping[str, str]]

COMMON_TEXTS: ByLanguage = {"en": en.COMMON, "fr": fr.COMMON}
AGENT_TEXTS: ByLanguage = {"en": en.AGENT, "fr": fr.AGENT}
STUDIO_TEXTS: ByLanguage = {"en": en.STUDIO, "fr": fr.STUDIO}
SHOPPER_TEXTS: ByLanguage = {"en": en.SHOPPER, "fr": fr.SHOPPER}
