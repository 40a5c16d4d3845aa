"""The field rules' shortcuts give the verdicts of the full checks they skip."""

from __future__ import annotations

import json
import random

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.event_fields import _MAYBE_CONTROL, _PLAIN_EMAIL, may_hold_controls, plain_email, plain_possible_number


def _accepted(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(st.from_regex(_PLAIN_EMAIL, fullmatch=True))
def test_every_plain_email_is_one_email_validator_accepts(address: str) -> None:
    """The shortcut never accepts an address the full check would refuse."""
    if plain_email(address):
        assert _accepted(address), address


@pytest.mark.parametrize(
    "address",
    [
        "s1@example.com",
        "claire.martin+shop@mail.example.fr",
        "a_b-c@shop-1.example.co.uk",
        "X@Y.ORG",
        "a@b.c",  # one-letter TLD: valid, but not the plain shape: email-validator decides
        "a@b.test",  # special-use: refused
        "a@localhost",
        "x@xn--p1ai.com",  # punycode: email-validator decides
        "ab--c@x.com",
        "a..b@x.com",
        ".a@x.com",
        "a@-x.com",
        "a@x-.com",
        "a@x.123",
        "a" * 65 + "@x.com",
        "a@" + "b" * 64 + ".com",
        "a@" + ".".join(["b" * 60] * 5) + ".com",
        "a,b@x.com",
        "a b@x.com",
        "a@x.com\n",
        "é@x.com",
        "a@bücher.de",
    ],
)
def test_the_shortcut_and_email_validator_agree_at_the_edges(address: str) -> None:
    """Where the shortcut says yes, so does email-validator; its no only means 'ask email-validator'."""
    assert not plain_email(address) or _accepted(address)


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "Chlo\u00e9",
        "a\nb",
        "a\u0001b",
        "a\u007fb",
        "a\u0085b",
        "a\\nb",
        'a"b',
        "a/b",
        "\u2028",
        "\u00c2\u00a0",
    ],
)
@pytest.mark.parametrize("ascii_only", [True, False])
def test_the_quick_control_scan_agrees_with_the_pattern(text: str, ascii_only: bool) -> None:
    """The byte pre-check only skips the pattern when the pattern would find nothing."""
    raw = json.dumps({"first_name": text}, ensure_ascii=ascii_only).encode("utf-8")
    assert may_hold_controls(raw) == (_MAYBE_CONTROL.search(raw) is not None)


def _possible(number: str) -> bool:
    try:
        return bool(phonenumbers.is_possible_number(phonenumbers.parse(number)))
    except phonenumbers.NumberParseException:
        return False


def test_the_phone_shortcut_never_accepts_a_number_phonenumbers_refuses() -> None:
    """Every country code, numbers of every length, some starting with its national prefix."""
    rng = random.Random(25)
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        region = phonenumbers.region_code_for_country_code(code)
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
        prefixes = ["", "0", "1", "9", "15", "06", getattr(metadata, "national_prefix", None) or ""]
        room = 15 - len(str(code))
        for _ in range(60):
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, room)))
            number = f"+{code}{(rng.choice(prefixes) + digits)[:room]}"
            assert not plain_possible_number(number) or _possible(number), number


@pytest.mark.parametrize("number", ["+33612345678", "+14155550123", "+447911123456", "+8613800138000"])
def test_common_mobile_numbers_take_the_shortcut(number: str) -> None:
    assert plain_possible_number(number) and _possible(number)


@pytest.mark.parametrize(
    "number", ["+", "+0612345678", "+33\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "+33 612345678"]
)
def test_other_shapes_are_left_to_phonenumbers(number: str) -> None:
    assert not plain_possible_number(number)
