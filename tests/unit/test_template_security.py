"""A template can never run code or exhaust the renderer: payloads are refused with a clear TemplateError."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recovery.render.templates import TemplateError, load_templates

CONTEXT: dict[str, object] = {
    "store": "shop",
    "cart": {
        "currency": "EUR",
        "value": 10,
        "items": [{"sku": "A", "name": "Mug", "quantity": 1, "unit_price": 10}],
        "restore_url": "https://shop.example/cart/1",
    },
    "unsubscribe_url": "https://recovery.example/u/t",
}


def attempt(root: Path, source: str) -> str:
    """Load and render ``source`` as an SMS template; return what reached the shopper."""
    path = root / "fr" / "payload.sms.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    templates = load_templates(root)
    message = templates.render(
        "payload", channel="sms", locale="fr", store_locale=None, context=CONTEXT, track=lambda url: url
    )
    return message.text


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ joiner.__init__.__globals__.__builtins__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ cart.__class__.__init__.__globals__ }}",
        "{{ cart._data }}",
        "{{ cart.items[0].__dict__ }}",
        "{{ (cart.restore_url | track).__class__ }}",
        "{{ ''|attr('__class__') }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ config }}",
        "{{ request }}",
    ],
)
def test_attribute_escapes_from_the_sandbox_are_refused(tmp_path: Path, payload: str) -> None:
    """Dunder and private attributes, and names that do not exist, fail instead of leaking objects."""
    with pytest.raises(TemplateError) as caught:
        attempt(tmp_path, payload)
    assert "payload.sms.txt:1:" in str(caught.value)
    assert "unsafe" in str(caught.value) or "undefined" in str(caught.value)


def test_unsafe_access_is_reported_as_a_sandbox_refusal(tmp_path: Path) -> None:
    """The error says the sandbox refused, and which attribute."""
    with pytest.raises(TemplateError, match=r"refused by the sandbox: .*'__class__'"):
        attempt(tmp_path, "{{ ''.__class__ }}")


def test_a_shell_command_through_globals_never_runs(tmp_path: Path) -> None:
    """The classic ``cycler.__init__.__globals__.os.system`` payload leaves no trace on disk."""
    marker = tmp_path / "pwned"
    payload = "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
    with pytest.raises(TemplateError):
        attempt(tmp_path, payload)
    assert not marker.exists()


DOUBLING_MACRO = (
    "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s | length }}{% endif %}{% endmacro %}"
    "{{ d('x', 60) }}"
)
LONG = "x" * 74


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{% for i in range(10**9) %}{% endfor %}", "sandbox budget"),
        ("{{ range(10**9) | list | length }}", "sandbox budget"),
        ("{% for i in range(5000) %}{% for j in range(5000) %}{% endfor %}{% endfor %}", "sandbox budget"),
        ("{{ 'a' * 10**9 }}", "larger than the sandbox allows"),
        ("{{ 10**9 * 'a' }}", "larger than the sandbox allows"),
        ("{{ [0] * 10**9 }}", "larger than the sandbox allows"),
        ("{{ 2 ** 1000000000 }}", "exponent"),
        ("{{ 9 ** (9 ** 9) }}", "exponent"),
        ("{{ '%0999999999d' % 1 }}", "formatting is not allowed"),
        ("{{ ('x' * 10000) | replace('x', '" + LONG + "') }}", "larger than the sandbox allows"),
        (DOUBLING_MACRO, "larger than the sandbox allows"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
    ],
)
def test_resource_exhaustion_is_refused_quickly(tmp_path: Path, payload: str, reason: str) -> None:
    """Huge ranges, repetitions, powers and recursion fail fast instead of eating CPU or memory."""
    started = time.monotonic()
    with pytest.raises(TemplateError, match=reason):
        attempt(tmp_path, payload)
    assert time.monotonic() - started < 5  # loose for a loaded CI machine: unbounded, these take minutes or gigabytes


def test_range_of_a_billion_says_the_sandbox_refused(tmp_path: Path) -> None:
    """The error for a huge loop names the limit, not a Python traceback."""
    with pytest.raises(TemplateError, match="sandbox budget"):
        attempt(tmp_path, "{% for i in range(10**9) %}x{% endfor %}")


@pytest.mark.parametrize(
    "payload",
    [
        "{{ 'x' | center(1000000000) }}",
        "{{ cart.items[0].name | safe }}",
        "{{ 'see https://evil.example' | urlize }}",
        "{{ lipsum(1000000) }}",
        "{% set ns = namespace(s='x') %}{{ ns.s }}",
        "{% autoescape false %}{{ cart.items[0].name }}{% endautoescape %}",
        "{% include '../../../etc/passwd' %}",
        "{% include '/etc/passwd' %}",
        "{% for i in range(3) %}",
    ],
)
def test_dangerous_filters_globals_and_tags_are_not_available(tmp_path: Path, payload: str) -> None:
    """Amplifying or escaping helpers are removed; broken or escaping includes fail as TemplateError."""
    with pytest.raises(TemplateError):
        attempt(tmp_path, payload)


def test_autoescape_off_is_a_syntax_error_at_its_line(tmp_path: Path) -> None:
    """Switching escaping off is refused when the template loads, pointing at the tag."""
    with pytest.raises(TemplateError, match=r"payload\.sms\.txt:2: .*autoescape blocks are not allowed"):
        attempt(tmp_path, "ok\n{% autoescape false %}{{ cart.items[0].name }}{% endautoescape %}")


def test_reasonable_loops_and_arithmetic_still_work(tmp_path: Path) -> None:
    """The limits do not get in the way of ordinary template logic."""
    text = attempt(tmp_path, "{% for i in range(3) %}{{ i * 2 }}{% endfor %} {{ 2 ** 10 }} {{ '-' * 5 }}")
    assert text == "024 1024 -----"


def test_templates_cannot_mutate_the_context(tmp_path: Path) -> None:
    """The immutable sandbox refuses ``append`` on lists handed to the template."""
    with pytest.raises(TemplateError):
        attempt(tmp_path, "{% set l = [1] %}{{ l.append(2) }}")
