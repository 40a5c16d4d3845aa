"""SMS encoding and segment maths (GSM 03.38 / UCS-2)."""

from __future__ import annotations

import pytest

from recovery.render.sms_text import (
    SmsEncoding,
    describe_sms,
    gsm_friendly,
    non_gsm_characters,
    segment_count,
    sms_encoding,
    to_gsm,
)


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", SmsEncoding.GSM_7, 0),
        ("a", SmsEncoding.GSM_7, 1),
        ("a" * 160, SmsEncoding.GSM_7, 1),
        ("a" * 161, SmsEncoding.GSM_7, 2),
        ("a" * 306, SmsEncoding.GSM_7, 2),
        ("a" * 307, SmsEncoding.GSM_7, 3),
        ("a" * 459, SmsEncoding.GSM_7, 3),
        ("a" * 460, SmsEncoding.GSM_7, 4),
        ("é" * 160, SmsEncoding.GSM_7, 1),
        ("€" * 80, SmsEncoding.GSM_7, 1),
        ("€" * 81, SmsEncoding.GSM_7, 2),
        ("a" * 159 + "€", SmsEncoding.GSM_7, 2),
        ("œ", SmsEncoding.UCS_2, 1),
        ("œ" * 70, SmsEncoding.UCS_2, 1),
        ("œ" * 71, SmsEncoding.UCS_2, 2),
        ("œ" * 134, SmsEncoding.UCS_2, 2),
        ("œ" * 135, SmsEncoding.UCS_2, 3),
        ("a" * 69 + "ç", SmsEncoding.UCS_2, 1),
        ("😀" * 35, SmsEncoding.UCS_2, 1),
        ("😀" * 36, SmsEncoding.UCS_2, 2),
    ],
)
def test_encoding_and_segments_follow_gsm_0338_and_ucs2_limits(text: str, encoding: SmsEncoding, segments: int) -> None:
    """Each row: the text's alphabet and how many segments it costs."""
    assert sms_encoding(text) is encoding
    assert segment_count(text) == segments


@pytest.mark.parametrize("char", list("^{}\\[~]|€"))
def test_extension_table_characters_count_as_two_septets(char: str) -> None:
    """80 extension characters fill one segment; 81 need a second."""
    assert sms_encoding(char) is SmsEncoding.GSM_7
    assert segment_count(char * 80) == 1
    assert segment_count(char * 81) == 2


def test_escape_pair_is_never_split_across_segments() -> None:
    """A euro sign that would straddle a 153-septet boundary moves whole to the next part."""
    text = "a" * 152 + "€" + "a" * 152
    # 152 + 2 + 152 = 306 septets would fit in two parts if the pair could be split; it cannot.
    assert segment_count(text) == 3


def test_french_accents_in_the_basic_table_stay_gsm7_but_cedilla_and_oe_do_not() -> None:
    """é, è, à, ù stay GSM-7; ç and œ force UCS-2 and are named."""
    assert sms_encoding("Déjà vu à l'île? où ça") is SmsEncoding.UCS_2
    assert non_gsm_characters("Déjà vu à l'île? où ça, cœur") == ["î", "ç", "œ"]
    assert sms_encoding("Votre panier préféré à 20 €") is SmsEncoding.GSM_7


def test_gsm_friendly_replaces_typographic_spaces_and_quotes() -> None:
    """Babel's no-break spaces and curly apostrophes no longer force UCS-2."""
    text = gsm_friendly("189,80\u202f€ \u00a0l’offre « ici »…")
    assert text == '189,80 €  l\'offre " ici "...'
    assert sms_encoding(text) is SmsEncoding.GSM_7


@pytest.mark.parametrize(("length", "over"), [(459, False), (460, True)])
def test_describe_sms_flags_texts_over_the_segment_budget(length: int, over: bool) -> None:
    """Three GSM-7 segments is the default budget."""
    info = describe_sms("a" * length)
    assert info.over_limit is over
    assert info.characters == length
    assert info.encoding is SmsEncoding.GSM_7


def test_describe_sms_accepts_a_custom_budget() -> None:
    """A one-segment budget flags a two-segment text."""
    assert describe_sms("a" * 161, max_segments=1).over_limit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Loïc", "Loic"),
        ("Françoise", "Francoise"),
        ("cœur", "coeur"),
        ("Zoé à Noël", "Zoé à Noel"),
        ("Ça", "Ça"),
        ("l’été", "l'été"),
        ("😀", "😀"),
    ],
)
def test_to_gsm_spells_letters_without_accents_only_when_needed(text: str, expected: str) -> None:
    """Letters already in GSM-7 keep their accent; others lose it; unspellable ones stay."""
    assert to_gsm(text) == expected
