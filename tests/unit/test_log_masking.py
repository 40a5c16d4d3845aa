"""Log masking reaches inside nested values and catches national-format phone numbers (issue 19)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from recovery.cli.log_setup import configure_logging, redact_text, redact_value


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("call 06 12 34 56 78 now", "06 12 34 56 78"),
        ("call 0612345678", "0612345678"),
        ("US (415) 555-2671", "555-2671"),
        ("dots 06.12.34.56.78", "06.12.34.56.78"),
        ("spaced +33 6 12 34 56 78", "6 12 34 56 78"),
        ("mail Claire@Example.com", "Claire@Example.com"),
    ],
)
def test_national_and_spaced_phone_numbers_are_masked(text: str, hidden: str) -> None:
    """Numbers written as people write them are masked like E.164 ones."""
    assert hidden not in redact_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "batch of 2000 events in 1.234 s",
        "at 2026-12-02 00:45:00",
        "2026-12-02T00:45:00+00:00",
        "cart-1234 journey 3f2c-1234-5678-9012",
        "port 5432, 100000 rows",
    ],
)
def test_ordinary_numbers_dates_and_ids_stay_readable(text: str) -> None:
    """Counts, times and ids are not phone numbers."""
    assert redact_text(text) == text


def test_addresses_inside_nested_dicts_and_lists_are_masked() -> None:
    """An email or a number two levels down, or under a secret-named key, is masked; the rest stays."""
    value = {
        "customer": {"email": "claire@example.com", "notes": ["ring 06 12 34 56 78", {"to": "+33612345678"}]},
        "cart_id": "cart-1",
        "items": ("anna@example.org", 3),
    }
    masked = redact_value(value)
    text = json.dumps(masked)
    for secret in ("claire@example.com", "06 12 34 56 78", "+33612345678", "anna@example.org"):
        assert secret not in text
    assert masked["cart_id"] == "cart-1"
    assert masked["items"][1] == 3


def test_a_log_record_with_a_nested_field_prints_no_address(restore_logging: None) -> None:
    """Through the real logging setup: ``extra`` holding a dict with an address prints it masked."""
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    logging.getLogger("recovery.test").info(
        "webhook refused", extra={"detail": {"errors": [{"input": "claire@example.com"}], "phone": "0612345678"}}
    )
    printed = stream.getvalue()
    assert "claire@example.com" not in printed and "0612345678" not in printed
    assert "webhook refused" in printed
