"""A rendered message has a size bound, and a template sees a bounded number of cart items."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recovery.render.templates import MAX_RENDERED_CHARS, MAX_TEMPLATE_ITEMS, TemplateError, load_templates


def render(root: Path, source: str, items: int = 1) -> str:
    path = root / "fr" / "bounded.sms.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    context: dict[str, object] = {
        "store": "shop",
        "cart": {
            "currency": "EUR",
            "value": 10,
            "items": [{"sku": f"S{i}", "name": "Mug", "quantity": 1, "unit_price": 10} for i in range(items)],
            "restore_url": "https://shop.example/cart/1",
        },
        "unsubscribe_url": "https://recovery.example/u/t",
    }
    return (
        load_templates(root)
        .render("bounded", channel="sms", locale="fr", store_locale=None, context=context, track=lambda url: url)
        .text
    )


def test_a_loop_that_renders_megabytes_stops_at_the_bound(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError, match=f"longer than {MAX_RENDERED_CHARS} characters"):
        render(tmp_path, "{% for i in range(5000) %}{{ 'x' * 1000 }}{% endfor %}")
    assert time.monotonic() - started < 5


def test_a_100_000_item_cart_renders_quickly_with_the_first_items_only(tmp_path: Path) -> None:
    started = time.monotonic()
    text = render(tmp_path, "{% for item in cart.items %}{{ item.sku }},{% endfor %}", items=100_000)
    assert time.monotonic() - started < 5
    assert text.count(",") == MAX_TEMPLATE_ITEMS
    assert text.startswith("S0,S1,")
