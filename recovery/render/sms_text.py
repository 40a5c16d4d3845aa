"""SMS text maths: GSM-7 or UCS-2 encoding, segment count, and typographic characters made GSM-friendly."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

# GSM 03.38 basic character set: each costs one septet.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each costs two septets (an escape, then the character).
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

_GSM_SINGLE, _GSM_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67

# Lookalikes that editors and Babel produce; one of them alone would switch a whole SMS to UCS-2.
_GSM_FRIENDLY = str.maketrans(
    {
        "\u00a0": " ",  # no-break space (Babel, French typography)
        "\u202f": " ",  # narrow no-break space (Babel's French currency and percent formats)
        "\u2009": " ",  # thin space
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00ab": '"',  # « guillemets »
        "\u00bb": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
    }
)
_LIGATURES = {"œ": "oe", "Œ": "OE"}


class SmsEncoding(StrEnum):
    """The two alphabets an SMS can travel in."""

    GSM_7 = "GSM-7"
    UCS_2 = "UCS-2"


@dataclass(frozen=True, kw_only=True)
class SmsInfo:
    """What sending a text costs: its alphabet, its number of segments, and whether it is over budget."""

    encoding: SmsEncoding
    segments: int
    characters: int
    over_limit: bool


def sms_encoding(text: str) -> SmsEncoding:
    """GSM-7 when every character is in the GSM 03.38 basic or extension table, else UCS-2."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text):
        return SmsEncoding.GSM_7
    return SmsEncoding.UCS_2


def non_gsm_characters(text: str) -> list[str]:
    """The distinct characters that force ``text`` into UCS-2, in order of first appearance."""
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in _GSM_BASIC and ch not in _GSM_EXTENSION:
            seen.setdefault(ch, None)
    return list(seen)


def gsm_friendly(text: str) -> str:
    """Replace typographic spaces, quotes, dashes and ellipses by their GSM-7 equivalents."""
    return text.translate(_GSM_FRIENDLY)


def to_gsm(text: str) -> str:
    """``text`` with non-GSM letters spelt without their accent (``Loïc`` → ``Loic``, ``œ`` → ``oe``)."""
    out = []
    for ch in gsm_friendly(text):
        if ch in _GSM_BASIC or ch in _GSM_EXTENSION:
            out.append(ch)
            continue
        bare = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        bare = _LIGATURES.get(ch, bare)
        # Letters with no GSM spelling (emoji, other scripts) are kept: dropping them would change meaning.
        out.append(bare if bare and all(c in _GSM_BASIC for c in bare) else ch)
    return "".join(out)


def _units(text: str, encoding: SmsEncoding) -> list[int]:
    """The cost of each character: septets in GSM-7, UTF-16 code units in UCS-2."""
    if encoding is SmsEncoding.GSM_7:
        return [2 if ch in _GSM_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(units: list[int], part_size: int) -> int:
    """Segments needed when no character may be split across two parts (escapes, surrogate pairs)."""
    segments, used = 1, 0
    for unit in units:
        if used + unit > part_size:
            segments, used = segments + 1, 0
        used += unit
    return segments


def segment_count(text: str) -> int:
    """How many SMS segments ``text`` takes; an empty text takes none."""
    if not text:
        return 0
    encoding = sms_encoding(text)
    units = _units(text, encoding)
    single, part = (_GSM_SINGLE, _GSM_PART) if encoding is SmsEncoding.GSM_7 else (_UCS2_SINGLE, _UCS2_PART)
    if sum(units) <= single:
        return 1
    return _pack(units, part)


def describe_sms(text: str, max_segments: int = 3) -> SmsInfo:
    """Encoding, segments and length of ``text``, flagged when it needs more than ``max_segments``."""
    segments = segment_count(text)
    return SmsInfo(
        encoding=sms_encoding(text),
        segments=segments,
        characters=len(text),
        over_limit=segments > max_segments,
    )
