"""The v1 event contract: examples parse; bad input becomes a readable rejection without personal data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from recovery.events import (
    CartUpdated,
    CheckoutStepReached,
    ConsentChanged,
    Event,
    EventType,
    OrderCompleted,
    PaymentFailed,
    Rejection,
    parse_event,
)

# The five lines of contracts/examples.jsonl, copied verbatim: tests do not read the shared folder.
EXAMPLES = [
    b'{"id":"evt-0001","type":"cart.updated","occurred_at":"2026-11-20T09:00:00+01:00","store":"fr",'
    b'"cart_id":"cart-42","customer":{"id":"cust-7","email":"claire.martin@example.com",'
    b'"phone":"+33612345678","first_name":"Claire","locale":"fr-FR","timezone":"Europe/Paris",'
    b'"consent":{"email":true,"sms":true,"phone":true}},"cart":{"currency":"EUR","value":189.8,'
    b'"shipping_cost":4.9,"restore_url":"https://boutique.example.com/panier/restaurer/9f2c","items":['
    b'{"sku":"SAC-CUIR-01","name":"Sac en cuir","quantity":1,"unit_price":149.9,'
    b'"image_url":"https://boutique.example.com/img/sac.jpg","url":"https://boutique.example.com/p/sac-cuir"},'
    b'{"sku":"ETUI-02","name":"\xc3\x89tui \xc3\xa0 cartes","quantity":2,"unit_price":17.5}]}}',
    b'{"id":"evt-0002","type":"checkout.step","occurred_at":"2026-11-20T09:03:10+01:00","store":"fr",'
    b'"cart_id":"cart-42","checkout_step":"shipping"}',
    b'{"id":"evt-0003","type":"payment.failed","occurred_at":"2026-11-20T09:06:45+01:00","store":"fr",'
    b'"cart_id":"cart-42","payment":{"reason":"authentication_failed","method":"card",'
    b'"provider_code":"3ds_timeout","amount":194.7}}',
    b'{"id":"evt-0004","type":"order.completed","occurred_at":"2026-11-20T18:30:00+01:00","store":"fr",'
    b'"cart_id":"cart-42","order":{"id":"ord-1001","value":194.7,"currency":"EUR"}}',
    b'{"id":"evt-0005","type":"consent.changed","occurred_at":"2026-11-21T10:00:00+01:00",'
    b'"customer":{"id":"cust-7","consent":{"email":true,"sms":false,"phone":true}}}',
]

EMAIL = "claire.martin@example.com"
PHONE = "+33612345678"

VALID_CART_UPDATED: dict[str, Any] = {
    "id": "evt-1",
    "type": "cart.updated",
    "occurred_at": "2026-11-20T09:00:00+01:00",
    "cart_id": "cart-1",
    "customer": {"id": "cust-1", "email": EMAIL, "phone": PHONE},
    "cart": {
        "currency": "EUR",
        "value": 10,
        "items": [{"sku": "A", "name": "A thing", "quantity": 1, "unit_price": 10}],
    },
}


def event(*changes: tuple[str, Any]) -> bytes:
    """A valid ``cart.updated`` with changes at dotted paths (a value of ``...`` deletes the field)."""
    document = json.loads(json.dumps(VALID_CART_UPDATED))
    for path, value in changes:
        *parents, leaf = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    return json.dumps(document).encode()


def rejection(raw: bytes | None) -> Rejection:
    """The rejection ``raw`` must produce."""
    parsed = parse_event(raw)
    assert isinstance(parsed, Rejection), f"expected a rejection, got {parsed!r}"
    return parsed


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        pytest.param(EXAMPLES[0], CartUpdated, id="cart.updated"),
        pytest.param(EXAMPLES[1], CheckoutStepReached, id="checkout.step"),
        pytest.param(EXAMPLES[2], PaymentFailed, id="payment.failed"),
        pytest.param(EXAMPLES[3], OrderCompleted, id="order.completed"),
        pytest.param(EXAMPLES[4], ConsentChanged, id="consent.changed"),
    ],
)
def test_every_contract_example_parses_to_its_type(raw: bytes, kind: type[Event]) -> None:
    """Each line of examples.jsonl is a valid event of the type it names."""
    parsed = parse_event(raw)
    assert isinstance(parsed, kind)
    assert parsed.id == json.loads(raw)["id"]


def test_the_cart_example_keeps_money_exact_and_time_aware() -> None:
    """Amounts are Decimals, not floats, and occurred_at keeps its offset as the same instant."""
    parsed = parse_event(EXAMPLES[0])
    assert isinstance(parsed, CartUpdated)
    assert parsed.cart.value == Decimal("189.8")
    assert parsed.cart.items[1].name == "Étui à cartes"
    assert parsed.cart.items[1].quantity == 2
    assert parsed.occurred_at == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    assert parsed.store == "fr"
    assert parsed.customer is not None and parsed.customer.consent is not None
    assert parsed.customer.consent.sms is True


def test_store_defaults_to_default_when_absent() -> None:
    """An event without ``store`` belongs to the ``default`` shop front."""
    parsed = parse_event(event())
    assert isinstance(parsed, CartUpdated)
    assert parsed.store == "default"


def test_a_null_store_is_the_default_store() -> None:
    """``"store": null`` means what an absent store means (the contract: optional, default ``default``)."""
    parsed = parse_event(event(("store", None)))
    assert isinstance(parsed, CartUpdated)
    assert parsed.store == "default"


def _consent_event(**fields: Any) -> bytes:
    return json.dumps(
        {"id": "evt-c", "type": "consent.changed", "occurred_at": "2026-11-20T08:00:00+00:00", **fields}
    ).encode()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"customer": {"id": "cust-1"}}, "needs customer.consent"),
        ({"customer": {"consent": {"email": False}}}, "needs customer.id"),
    ],
)
def test_a_consent_change_that_changes_nobody_is_rejected(fields: dict[str, Any], reason: str) -> None:
    """A consent.changed without consent, or without whose it is, is rejected with the reason (not ignored)."""
    parsed = parse_event(_consent_event(**fields))
    assert isinstance(parsed, Rejection)
    assert reason in parsed.reason


def test_a_guest_consent_change_names_the_cart() -> None:
    """A guest (no customer id) changes consent through the cart it shopped with."""
    parsed = parse_event(_consent_event(cart_id="cart-9", customer={"consent": {"sms": False}}))
    assert not isinstance(parsed, Rejection)


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        pytest.param(b"{not json", ["not JSON"], id="not JSON"),
        pytest.param(b"\xff\xfe garbage", ["not JSON"], id="not UTF-8"),
        pytest.param(b"", ["empty message"], id="empty body"),
        pytest.param(None, ["empty message"], id="tombstone (no body)"),
        pytest.param(b"[1, 2]", ["not a JSON object", "list"], id="JSON array"),
        pytest.param(b'"hello"', ["not a JSON object", "str"], id="JSON string"),
        pytest.param(event(("type", ...)), ["missing field 'type'"], id="missing type"),
        pytest.param(
            event(("type", "cart.exploded")),
            ["unknown event type 'cart.exploded'", "cart.updated", "consent.changed"],
            id="unknown type lists the known ones",
        ),
        pytest.param(event(("cart_id", ...)), ["missing field 'cart_id'"], id="missing cart_id"),
        pytest.param(event(("id", ...)), ["missing field 'id'"], id="missing id"),
        pytest.param(event(("id", "")), ["field 'id'", "at least 1"], id="empty id"),
        pytest.param(
            event(("cart.value", -1)),
            ["field 'cart.value'", "greater than or equal to 0"],
            id="negative value",
        ),
        pytest.param(
            event(("cart.items.0.unit_price", -0.01)),
            ["field 'cart.items.0.unit_price'"],
            id="negative unit price",
        ),
        pytest.param(event(("cart.items.0.quantity", 0)), ["field 'cart.items.0.quantity'", "1"], id="quantity 0"),
        pytest.param(
            event(("cart.items.0.quantity", 1.5)), ["field 'cart.items.0.quantity'"], id="fractional quantity"
        ),
        pytest.param(
            event(("cart.value", 2e9)),
            ["field 'cart.value'", "less than or equal to 1000000000"],
            id="absurd value over 1e9",
        ),
        pytest.param(event(("cart.value", "Infinity")), ["field 'cart.value'", "finite"], id="infinite value"),
        pytest.param(event(("cart.value", True)), ["field 'cart.value'"], id="boolean value"),
        pytest.param(
            event(("occurred_at", "2026-11-20T09:00:00")),
            ["field 'occurred_at'", "timezone"],
            id="naive timestamp",
        ),
        pytest.param(event(("occurred_at", "last tuesday")), ["field 'occurred_at'"], id="unparseable timestamp"),
        pytest.param(event(("occurred_at", 1763625600)), ["field 'occurred_at'", "RFC 3339"], id="numeric timestamp"),
        pytest.param(
            event(("occurred_at", "1970-01-01T00:00:00Z")),
            ["field 'occurred_at'", "2000-2100"],
            id="year 1970",
        ),
        pytest.param(
            event(("occurred_at", "2150-01-01T00:00:00Z")),
            ["field 'occurred_at'", "2000-2100"],
            id="year 2150",
        ),
        pytest.param(event(("cart.currency", "euro")), ["field 'cart.currency'"], id="bad currency"),
        pytest.param(event(("cart.currency", "eur")), ["field 'cart.currency'"], id="lower-case currency"),
        pytest.param(event(("customer.phone", "0612345678")), ["field 'customer.phone'"], id="phone not in E.164"),
        pytest.param(event(("customer.email", "no-at-sign")), ["field 'customer.email'"], id="bad email"),
        pytest.param(event(("cart", ...)), ["missing field 'cart'"], id="cart.updated without cart"),
    ],
)
def test_bad_input_is_rejected_with_a_readable_reason(raw: bytes | None, fragments: list[str]) -> None:
    """Each kind of bad input is rejected, and the reason names what is wrong and where."""
    reason = rejection(raw).reason
    for fragment in fragments:
        assert fragment in reason


def test_a_field_rejection_keeps_the_event_id_and_type() -> None:
    """A rejection of a well-formed envelope carries its id and type for the dead-letter record."""
    refused = rejection(event(("cart.value", -1)))
    assert (refused.event_id, refused.event_type) == ("evt-1", EventType.CART_UPDATED.value)


def test_several_problems_are_reported_together() -> None:
    """Two bad fields in one event are both named in the reason."""
    reason = rejection(event(("cart.value", -1), ("cart.currency", "euro"))).reason
    assert "cart.value" in reason
    assert "cart.currency" in reason


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param([("cart.value", -1)], id="bad cart value beside a real email and phone"),
        pytest.param([("occurred_at", "soon")], id="bad timestamp beside a real email and phone"),
        pytest.param([("customer.phone", "06 12 34 56 78")], id="the bad phone itself"),
        pytest.param([("customer.email", "claire.martin at example.com")], id="the bad email itself"),
        pytest.param([("customer.phone", 33612345678)], id="phone given as a number"),
        pytest.param([("customer.email", ["claire.martin@example.com"])], id="email given as a list"),
        pytest.param([("cart_id", ...), ("customer.first_name", 7)], id="missing cart id and bad name"),
    ],
)
def test_rejection_reasons_never_contain_an_email_or_phone(changes: list[tuple[str, Any]]) -> None:
    """The reason is built from field paths only: no email address or phone number of the input."""
    raw = event(*changes)
    reason = rejection(raw).reason
    for secret in (EMAIL, PHONE, "33612345678", "06 12 34 56 78", "claire.martin at example.com"):
        assert secret not in reason
    assert "claire" not in reason.lower()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("cart.exploded", "'cart.exploded'", id="a type-shaped value is echoed"),
        pytest.param(EMAIL, "(not shown)", id="an email in type is not echoed"),
        pytest.param(PHONE, "(not shown)", id="a phone in type is not echoed"),
        pytest.param(5, "(not shown)", id="a number in type is not echoed"),
        pytest.param({"name": EMAIL}, "(not shown)", id="an object in type is an unknown type, not a crash"),
        pytest.param([EMAIL], "(not shown)", id="a list in type is an unknown type, not a crash"),
    ],
)
def test_an_unknown_type_is_echoed_only_when_it_looks_like_a_type(value: Any, shown: str) -> None:
    """A platform that maps a customer's email into ``type`` does not leak it into the dead-letter reason."""
    reason = rejection(event(("type", value))).reason
    assert reason.startswith(f"unknown event type {shown} (expected one of: cart.updated")
    assert EMAIL not in reason
    assert PHONE not in reason


def test_unknown_extra_fields_are_ignored() -> None:
    """Platforms add fields over time: extra fields at any level do not reject the event."""
    raw = event(
        ("channel_hint", "mobile-app"),
        ("customer.loyalty_tier", "gold"),
        ("cart.coupon", {"code": "WELCOME"}),
        ("cart.items.0.colour", "red"),
    )
    parsed = parse_event(raw)
    assert isinstance(parsed, CartUpdated)
    assert "channel_hint" not in parsed.model_dump()


def test_consent_changed_needs_no_cart_id() -> None:
    """``consent.changed`` is about a customer, not a cart: it parses without ``cart_id``."""
    parsed = parse_event(EXAMPLES[4])
    assert isinstance(parsed, ConsentChanged)
    assert parsed.cart_id is None
    assert parsed.customer.id == "cust-7"
    assert parsed.customer.consent is not None
    assert (parsed.customer.consent.email, parsed.customer.consent.sms) == (True, False)


def test_consent_changed_without_customer_is_rejected() -> None:
    """A consent change must say whose consent it is."""
    raw = b'{"id":"e","type":"consent.changed","occurred_at":"2026-11-21T10:00:00Z"}'
    assert "missing field 'customer'" in rejection(raw).reason


@pytest.mark.parametrize(
    "event_type",
    ["cart.updated", "checkout.step", "payment.failed", "order.completed", "order.refunded"],
)
def test_every_cart_type_requires_a_cart_id(event_type: str) -> None:
    """All types but ``consent.changed`` are rejected without ``cart_id``."""
    raw = json.dumps({"id": "e", "type": event_type, "occurred_at": "2026-11-21T10:00:00Z"}).encode()
    assert "missing field 'cart_id'" in rejection(raw).reason


def test_an_empty_cart_is_a_valid_cart_update() -> None:
    """``cart.items`` empty means the cart was emptied, which is valid."""
    parsed = parse_event(event(("cart.items", []), ("cart.value", 0)))
    assert isinstance(parsed, CartUpdated)
    assert parsed.cart.items == []


@pytest.mark.parametrize(
    ("step", "valid"),
    [("cart", True), ("shipping", True), ("review", True), ("delivery", False), ("", False)],
)
def test_checkout_step_must_be_a_known_step(step: str, valid: bool) -> None:
    """Only the six contract checkout steps are accepted."""
    raw = json.dumps(
        {
            "id": "e",
            "type": "checkout.step",
            "occurred_at": "2026-11-21T10:00:00Z",
            "cart_id": "c",
            "checkout_step": step,
        }
    ).encode()
    assert isinstance(parse_event(raw), CheckoutStepReached) is valid
