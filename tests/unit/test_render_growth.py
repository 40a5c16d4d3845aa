"""Every template operation that grows a value is refused before it runs; a runaway render stops at its deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recovery.desk.queue import CompletionError, decide_completion
from recovery.events import is_http_url
from recovery.render.bounds import RenderLimits, configure, operation_deadline, render_budget, weight
from recovery.render.context import build_context
from recovery.render.files import RenderTimedOut
from recovery.render.growth import replaced_size
from recovery.render.templates import TemplateError
from tests.unit.test_template_security import attempt

BIG = "{% set a = 'x' * 100000 %}"
ROWS = "{% set l = [1] * 300 %}"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (BIG + "{% set a = a ~ a %}" * 9 + "{{ a | length }}", "'~' concatenation of 200000"),
        (BIG + "{{ (a ~ 'y') | length }}", "'~' concatenation"),
        (BIG + "{{ (a + a) | length }}", "a concatenation of 200000"),
        ("{% set l = [1] * 100000 %}{{ (l + l) | length }}", "a concatenation of 200000"),
        ("{{ (((10 ** 64) ** 64) ** 64) % 7 }}", "a power of"),
        (
            "{% set x = (10 ** 64) ** 60 %}{% set y = x * x * x * x * x * x * x * x %}{{ (y * y * y) % 7 }}",
            "a product of",
        ),
        (BIG + "{{ a | replace('x', 'yy') | length }}", "a replace of 200000"),
        (BIG + "{{ a.replace('x', 'yy') | length }}", "a replace of 200000"),
        ("{{ 'x'.ljust(200000000) }}", "str.ljust of 200000000"),
        ("{{ 'x'.center(200000000) }}", "str.center of 200000000"),
        ("{{ 'x'.zfill(200000000) }}", "str.zfill"),
        ("{{ ('\t' * 1000).expandtabs(1000) }}", "str.expandtabs"),
        ("{{ '{:>200000000}'.format(1) }}", "format spec"),
        ("{{ '{:.200000000f}'.format(1.0) }}", "format spec"),
        ("{{ '{0:{1}}'.format(1, 200000000) }}", "format spec"),
        ("{{ 'x'.translate({120: 'y'}) }}", "translate is not allowed"),
        (BIG + "{{ [a, a] | join | length }}", "a join of 200000"),
        (BIG + "{{ '-'.join([a, a]) | length }}", "an argument of 200000"),
        (BIG + "{{ ([a] * 100000) | length }}", "a repetition of 10000000000"),
        ("{{ ('a ' * 50000) | wordwrap(1, wrapstring='y' * 1000) }}", "a wordwrap of"),
        ("{{ [[1] * 1000] * 100 | sum(start=[]) }}", "sum adds numbers only"),
        (
            ROWS
            + "{% set b %}{% for i in l %}{% for j in l %}"
            + "x" * 50
            + "{% endfor %}{% endfor %}{% endset %}{{ b | length }}",
            "a block's output",
        ),
        (
            "{% macro m() %}{% for i in range(200) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}{{ m() | length }}",
            "a block's output",
        ),
        (
            "{% set l = [1] * 100000 %}{% for i in l %}{% for j in l %}{% endfor %}{% endfor %}",
            "loops turn more than 100000",
        ),
    ],
)
def test_growing_operations_are_refused_before_they_run(tmp_path: Path, payload: str, reason: str) -> None:
    """Each attack is refused with a reason naming the bound, long before it could finish.

    Run to the end, each would take hours (10^10 loop turns) or gigabytes; the bound is loose so a loaded CI
    machine (the loop counter's 100 000 turns took 1.4 s there once) does not fail a refusal that happened.
    """
    started = time.monotonic()
    with pytest.raises(TemplateError, match=reason):
        attempt(tmp_path, payload)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("{{ 'a' ~ 'b' ~ 1 }}", "ab1"),
        ("{{ [1, 2] + [3] }}", "[1, 2, 3]"),
        ("{{ 'x' * 3 }}{{ 2 ** 10 }}{{ 12 * 12 }}", "xxx1024144"),
        ("{{ 'a-b' | replace('-', '+') }} {{ 'ab'.ljust(4, '.') }} {{ '{:>4}'.format(7) }}", "a+b ab..    7"),
        ("{{ ['a', 'b'] | join(', ') }} {{ '/'.join(['x', 'y']) }} {{ [1, 2] | sum }}", "a, b x/y 3"),
        ("{% for item in cart.items %}{{ loop.index }}:{{ item.name }}{% endfor %}", "1:Mug"),
    ],
)
def test_ordinary_template_logic_is_untouched(tmp_path: Path, payload: str, expected: str) -> None:
    """The bounds never get in the way of what messages really do."""
    assert attempt(tmp_path, payload) == expected


@pytest.fixture
def short_deadline() -> Iterator[None]:
    configure(RenderLimits(deadline=0.5))
    yield
    configure(RenderLimits())


def test_a_runaway_render_within_every_size_bound_stops_at_the_deadline(tmp_path: Path, short_deadline: None) -> None:
    """Minutes of big-integer work inside loops: the sandbox stops it itself, about at the deadline."""
    started = time.monotonic()
    with pytest.raises(RenderTimedOut, match=r"longer than 0\.5 s and was stopped"):
        attempt(tmp_path, ROWS + "{% for i in l %}{% for j in l %}{{ ((10 ** 64) ** 60) % 7 }}{% endfor %}{% endfor %}")
    assert time.monotonic() - started < 3  # minutes if not stopped; loose for a loaded CI machine


def test_an_operation_deadline_ends_every_render_inside_it() -> None:
    """A save's check ends its renders at the check's deadline when that comes first."""
    with operation_deadline(0.1), render_budget(RenderLimits(deadline=60)) as budget:
        assert budget.stop_at - time.monotonic() <= 0.1


@pytest.mark.parametrize(
    ("value", "size"),
    [("abc", 3), ("", 1), ([], 1), (["ab", "c"], 3), ({"k": "vv"}, 3), (10**30, 34), ([["x" * 10]] * 3, 30)],
)
def test_weight_counts_nested_values(value: object, size: int) -> None:
    """A value's weight is its characters, nested values included, each at least one."""
    assert weight(value) == size


@pytest.mark.parametrize(
    ("text", "old", "new", "count", "size"),
    [("aaa", "a", "bb", None, 6), ("aaa", "a", "bb", 1, 4), ("abc", "", "-", None, 7), ("abc", "z", "yy", None, 3)],
)
def test_replaced_size_is_exact_without_building_the_result(
    text: str, old: str, new: str, count: int | None, size: int
) -> None:
    """The pre-computed length equals Python's own result."""
    assert replaced_size(text, old, new, count) == size == len(text.replace(old, new, -1 if count is None else count))


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://shop.example/cart/1", True),
        ("HTTP://shop.example", True),
        ("javascript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,x", False),
        ("//shop.example/x", False),
        ("https:///no-host", False),
        ("vbscript:x", False),
    ],
)
def test_only_absolute_http_urls_are_links(url: str, ok: bool) -> None:
    """The rule every URL from an event passes before it can become a link or a redirect."""
    assert is_http_url(url) is ok


NOW = datetime(2026, 1, 9, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ahead", "accepted"),
    [(timedelta(hours=1), True), (timedelta(days=90), True), (timedelta(days=90, seconds=1), False)],
)
def test_call_back_later_is_at_most_90_days_ahead(ahead: timedelta, accepted: bool) -> None:
    """A later call is kept within 90 days; beyond, the outcome is refused (422 at the API)."""
    if accepted:
        assert decide_completion("call_back_later", NOW + ahead, NOW).reopen_at == NOW + ahead
    else:
        with pytest.raises(CompletionError, match="within 90 days"):
            decide_completion("call_back_later", NOW + ahead, NOW)


def test_a_stored_non_http_image_url_never_reaches_a_template() -> None:
    """Images load from http(s) addresses only, even for carts stored before the ingest check."""
    context = build_context(
        {"cart": {"items": [{"image_url": "javascript:x"}, {"image_url": "https://i.example/1.png"}]}}
    )
    items = context["cart"].items  # type: ignore[attr-defined]
    assert [item.image_url for item in items] == [None, "https://i.example/1.png"]
