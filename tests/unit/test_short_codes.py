"""Short-link codes: 10 characters of base 62 from one CSPRNG read, every character equally likely."""

from __future__ import annotations

from collections import Counter

from recovery.render.short_links import CODE_ALPHABET, CODE_LENGTH, is_code, new_code


def test_codes_have_the_shape_a_lookup_accepts_and_do_not_repeat() -> None:
    """Every code passes ``is_code`` and 5 000 codes are 5 000 different ones."""
    codes = [new_code() for _ in range(5000)]
    assert all(len(code) == CODE_LENGTH and is_code(code) for code in codes)
    assert len(set(codes)) == len(codes)


def test_every_character_of_the_alphabet_is_drawn_about_equally_often() -> None:
    """No modulo bias: over 200 000 characters each of the 62 lands within 15 % of its share."""
    counts = Counter("".join(new_code() for _ in range(20000)))
    expected = 20000 * CODE_LENGTH / len(CODE_ALPHABET)
    assert set(counts) == set(CODE_ALPHABET)
    assert all(abs(count - expected) < 0.15 * expected for count in counts.values()), counts
