"""``check_templates``: every template, every locale, every sample; problems say file, line and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recovery.render.check import Severity, check_templates, find_template_problems

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A scratch copy of the shipped templates and samples."""
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, target)
    return target


def edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` in ``path``; return the 1-based line where it was."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return line


def test_shipped_templates_have_no_problem() -> None:
    """The templates in the repository pass their own check, warnings included."""
    assert check_templates(TEMPLATES_DIR, TEMPLATES_DIR / "samples") == []


def test_misspelt_variable_names_file_line_and_variable(copy: Path) -> None:
    """``cart.totl`` is reported as ``path:line: template 'x' locale 'fr': 'cart.totl' is undefined``."""
    path = copy / "fr" / "cart_reminder.email.txt"
    line = edit(path, "{{ cart.restore_url | track }}", "{{ cart.totl | money }}")
    problems = check_templates(copy, copy / "samples")
    expected = f"{path}:{line}: template 'cart_reminder' locale 'fr': 'cart.totl' is undefined"
    assert any(problem.startswith(expected) for problem in problems), problems


def test_the_same_mistake_is_reported_once_not_once_per_sample(copy: Path) -> None:
    """Six samples hitting one typo make one line."""
    edit(copy / "en" / "cart_offer.sms.txt", "{{ cart.restore_url | track }}", "{{ cart.restor_url }}")
    problems = [p for p in check_templates(copy, copy / "samples") if "cart.restor_url" in p]
    assert len(problems) == 1


def test_misspelt_variable_in_a_layout_points_at_the_layout(copy: Path) -> None:
    """An error in ``_layout.email.html`` names the layout file, for every template extending it."""
    layout = copy / "en" / "_layout.email.html"
    line = edit(layout, "{{ unsubscribe_url }}", "{{ unsubscribe_link }}")
    problems = check_templates(copy, copy / "samples")
    assert any(p.startswith(f"{layout}:{line}: ") and "'unsubscribe_link' is undefined" in p for p in problems)


def test_unclosed_tag_is_a_syntax_error_with_its_line(copy: Path) -> None:
    """A missing ``{% endif %}`` is reported with the file and a line number."""
    path = copy / "fr" / "callback_offer.sms.txt"
    path.write_text("Bonjour\n{% if customer.first_name %}\n{{ customer.first_name }}\n", encoding="utf-8")
    problems = check_templates(copy, copy / "samples")
    syntax = [p for p in problems if p.startswith(f"{path}:")]
    assert len(syntax) == 1
    assert "syntax error" in syntax[0] and "endif" in syntax[0]
    assert syntax[0].startswith(f"{path}:3: ")


def test_syntax_error_in_a_layout_is_reported_once_at_its_line(copy: Path) -> None:
    """A broken layout is one problem at its own line, not one per template that extends it."""
    layout = copy / "fr" / "_layout.email.txt"
    line = edit(layout, "{% block actions %}{% endblock %}", "{% block actions %}{% endblok %}")
    problems = [p for p in check_templates(copy, copy / "samples") if str(layout) in p]
    assert len(problems) == 1
    assert problems[0].startswith(f"{layout}:{line}: locale 'fr': syntax error")


def test_unknown_filter_is_reported_at_its_line(copy: Path) -> None:
    """A filter that does not exist (or was removed, like ``safe``) is a syntax error at its line."""
    path = copy / "en" / "cart_reminder.email.html"
    line = edit(path, "{{ ui.button(", "{{ customer.first_name | safe }}\n{{ ui.button(")
    problems = check_templates(copy, copy / "samples")
    assert any(p.startswith(f"{path}:{line}: ") and "safe" in p for p in problems), problems


def test_missing_subject_is_an_error(copy: Path) -> None:
    """An email template needs a subject file in each locale it exists in."""
    (copy / "fr" / "cart_offer.email.subject").unlink()
    problems = find_template_problems(copy, copy / "samples")
    errors = [p for p in problems if p.severity is Severity.ERROR]
    assert [str(p) for p in errors] == [
        f"{copy / 'fr' / 'cart_offer.email.subject'}: template 'cart_offer' locale 'fr': file is missing"
    ]


def test_template_missing_in_one_locale_is_a_warning(copy: Path) -> None:
    """A template written only in French still works (fallback) but is flagged."""
    for part in ("subject", "txt", "html"):
        (copy / "en" / f"callback_offer.email.{part}").unlink()
    problems = find_template_problems(copy, copy / "samples")
    assert [p.severity for p in problems] == [Severity.WARNING]
    assert "callback_offer" in str(problems[0]) and "email" in str(problems[0])


def test_sms_over_the_segment_limit_is_a_warning_naming_the_culprit(copy: Path) -> None:
    """A long SMS in UCS-2 gets a warning line that says why it is UCS-2."""
    path = copy / "fr" / "cart_reminder.sms.txt"
    edit(path, "vous attend.", "vous attend. " + "Nous gardons votre cœur de panier au chaud. " * 4)
    problems = find_template_problems(copy, copy / "samples")
    warnings = [str(p) for p in problems if p.severity is Severity.WARNING]
    assert warnings and all(w.startswith(f"{path}: warning: ") for w in warnings)
    assert "segments (UCS-2)" in warnings[0] and "'œ'" in warnings[0]
    assert all(p.severity is Severity.WARNING for p in problems)


def test_errors_come_before_warnings(copy: Path) -> None:
    """Printable lines list what fails the check first."""
    (copy / "en" / "cart_offer.sms.txt").unlink()
    edit(copy / "fr" / "cart_offer.sms.txt", "{{ offer.code }}", "{{ offer.cod }}")
    lines = check_templates(copy, copy / "samples")
    assert "'offer.cod' is undefined" in lines[0]
    assert ": warning: " in lines[-1]


def test_a_broken_sample_is_reported(copy: Path) -> None:
    """A sample that is not JSON is named with its line."""
    bad = copy / "samples" / "zz_bad.json"
    bad.write_text('{\n  "context": {,\n}', encoding="utf-8")
    problems = check_templates(copy, copy / "samples")
    assert any(p.startswith(f"{bad}:2: ") for p in problems), problems


def test_missing_templates_directory_is_reported(tmp_path: Path) -> None:
    """Pointing the check at nothing is an error, not a crash."""
    assert check_templates(tmp_path / "nope", tmp_path / "nope" / "samples") == [
        f"{tmp_path / 'nope'}: templates directory not found"
    ]
