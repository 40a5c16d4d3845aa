"""Which language the pages speak, from the browser's Accept-Language header."""

from __future__ import annotations

import pytest

from recovery.api.pages.languages import negotiate_language, texts_for


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("en-GB,en;q=0.9,fr;q=0.8", "en"),
        ("de-DE,fr;q=0.5,en;q=0.3", "fr"),
        ("de-DE,es", "en"),
        ("en;q=0.2,fr;q=0.7", "fr"),
        ("fr;q=0,en;q=0.1", "en"),
        ("fr;q=abc,en", "en"),
        ("FR-ca", "fr"),
        ("fr,en", "fr"),
    ],
)
def test_the_page_language_follows_accept_language(header: str | None, expected: str) -> None:
    """The best-weighted supported language wins; English when none is asked for or the header is bad."""
    assert negotiate_language(header) == expected


def test_a_text_missing_in_french_falls_back_to_english() -> None:
    """A page shows the English text rather than nothing when a translation is missing."""
    texts = texts_for("fr", {"en": {"only_en": "Queue", "both": "Call"}, "fr": {"both": "Appeler"}})
    assert (texts["only_en"], texts["both"], texts["sign_in"]) == ("Queue", "Appeler", "Se connecter")
