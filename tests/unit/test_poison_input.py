"""Poison input at parse time: characters, addresses, numbers, nesting and size each become a dead-letter reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recovery.events import Event, Rejection, is_landline
from recovery.ingest.poison import decode_record

BASE: dict[str, Any] = {
    "id": "evt-1",
    "type": "cart.updated",
    "occurred_at": "2026-11-20T09:00:00+01:00",
    "cart_id": "cart-1",
    "cart": {"currency": "EUR", "value": 10, "items": [{"sku": "A", "name": "A", "quantity": 1, "unit_price": 10}]},
}
MAX = 100_000


def with_(**fields: Any) -> bytes:
    return json.dumps({**BASE, **fields}).encode()


def with_customer(**fields: Any) -> bytes:
    return with_(customer={"id": "c1", **fields})


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"id":"x","type":"cart.updated","x":' + b"[" * 3000 + b"]" * 3000 + b"}", "nested too deeply"),
        (with_(store="fr\u0000"), "'store' contains a control character"),
        (with_customer(locale="fr\x85x"), "'locale' contains a control character"),
        (with_customer(locale="fr_FR/../x"), "not a locale"),
        (with_customer(email="a\x1c@b.com"), "'email' contains a control character"),
        (with_customer(email="postmaster,x@evil.com"), "not a single valid email address"),
        (with_customer(email="nobody"), "not a single valid email address"),
        (with_customer(timezone="America"), "not an IANA timezone"),
        (with_customer(phone="+1234"), "customer.phone"),
        (with_(cart={**BASE["cart"], "value": 1e15}), "cart.value"),
        (
            with_(cart={**BASE["cart"], "items": [{**BASE["cart"]["items"][0], "quantity": 3_000_000_000}]}),
            "quantity",
        ),
        (b"x" * (MAX + 1), "above ingest.max_event_bytes"),
    ],
    ids=[
        "nesting",
        "nul",
        "c1-locale",
        "locale-shape",
        "c0-email",
        "two-recipients",
        "no-at",
        "tz-dir",
        "short-phone",
        "huge-value",
        "int32-quantity",
        "too-big",
    ],
)
def test_poison_is_rejected_with_a_reason_naming_the_problem(raw: bytes, fragment: str) -> None:
    result = decode_record(raw, max_bytes=MAX)
    assert isinstance(result, Rejection)
    assert fragment in result.reason


@pytest.mark.parametrize(
    ("text", "field"),
    [("fr\x85x", "locale"), ("fr\x7fx", "locale"), ("Chlo\u00e9\x9b", "first_name"), ("a\nb", "first_name")],
    ids=["raw-c1", "raw-del", "raw-c1-after-accent", "escaped-newline"],
)
def test_control_characters_written_raw_in_utf8_are_rejected_too(text: str, field: str) -> None:
    """Producers that do not escape non-ASCII send C1 controls and DEL as raw UTF-8 bytes."""
    raw = json.dumps({**BASE, "customer": {"id": "c1", field: text}}, ensure_ascii=False).encode("utf-8")
    result = decode_record(raw, max_bytes=MAX)
    assert isinstance(result, Rejection)
    assert f"'{field}' contains a control character" in result.reason


def test_escaped_accents_are_not_mistaken_for_control_characters() -> None:
    raw = with_customer(first_name="Chlo\u00e9 \u00c0 \u00ff")
    assert not isinstance(decode_record(raw, max_bytes=MAX), Rejection)


def test_a_valid_shopper_still_parses() -> None:
    raw = with_customer(email="claire@example.com", phone="+33612345678", locale="fr-FR", timezone="Europe/Paris")
    assert not isinstance(decode_record(raw, max_bytes=MAX), Rejection)


@pytest.mark.parametrize(
    ("phone", "landline"),
    [("+33140000000", True), ("+33612345678", False), ("+14155550123", False), ("not a number", False)],
)
def test_landlines_are_told_apart_from_mobiles(phone: str, landline: bool) -> None:
    assert is_landline(phone) is landline


# Generated malformed events: each one breaks one thing a valid event has.
_wrong_types = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.lists(st.integers()))
_breakers = st.one_of(
    st.binary(max_size=60).map(lambda b: b"\xff" + b),  # not UTF-8 / not JSON
    st.integers(min_value=50, max_value=4000).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
    st.sampled_from(["id", "type", "occurred_at", "cart_id", "cart"]).map(
        lambda k: json.dumps({key: v for key, v in BASE.items() if key != k}).encode()  # a missing field
    ),
    st.tuples(st.sampled_from(["id", "occurred_at", "cart_id", "cart", "type"]), _wrong_types).map(
        lambda kv: json.dumps({**BASE, kv[0]: kv[1]}).encode()  # a wrong type
    ),
    st.integers(min_value=10**10, max_value=10**30).map(
        lambda n: json.dumps({**BASE, "cart": {**BASE["cart"], "value": n}}).encode()  # huge number
    ),
    st.sampled_from([chr(c) for c in [*range(0, 32), *range(127, 160)]]).map(
        lambda c: json.dumps({**BASE, "cart_id": f"cart{c}1"}).encode()  # a control character
    ),
)
_valid = st.builds(
    lambda n, value: json.dumps({**BASE, "id": f"evt-{n}", "cart": {**BASE["cart"], "value": value}}).encode(),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), st.data()), min_size=1, max_size=20), st.data())
def test_fuzz_every_valid_event_parses_and_every_malformed_one_gets_a_reason(
    kinds: list[tuple[bool, Any]], data: st.DataObject
) -> None:
    for is_valid, _ in kinds:
        raw = data.draw(_valid if is_valid else _breakers)
        result = decode_record(raw, max_bytes=MAX)
        if is_valid:
            assert isinstance(result, Event.__args__), result
        else:
            assert isinstance(result, Rejection), raw[:200]
            assert result.reason.strip()
