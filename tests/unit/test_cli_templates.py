"""``recovery templates preview`` and ``list``, run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from recovery.cli.templates import templates_app
from recovery.render.samples import PREVIEW_LINK_PREFIX

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(templates_app, [*args, "--templates-dir", str(TEMPLATES_DIR)])
    return result.exit_code, result.output


def test_preview_prints_subject_text_and_shows_where_links_go() -> None:
    """An email preview shows the subject, the text and readable placeholder links."""
    code, output = invoke("preview", "cart_reminder", "--locale", "fr", "--channel", "email")
    assert code == 0, output
    assert "subject" in output and "Reprendre mon panier" in output
    assert PREVIEW_LINK_PREFIX in output.replace("\n", "")


def test_preview_of_an_sms_shows_encoding_and_segments() -> None:
    """An SMS preview tells its alphabet and segment count."""
    code, output = invoke("preview", "callback_offer", "--locale", "en", "--channel", "sms")
    assert code == 0, output
    assert "GSM-7" in output and "Reply CALL" in output


def test_preview_writes_the_html_file(tmp_path: Path) -> None:
    """``--html`` saves the rendered HTML for a browser."""
    out = tmp_path / "preview.html"
    sample = TEMPLATES_DIR / "samples" / "fr_payment_3ds.json"
    code, output = invoke("preview", "payment_failed", "--sample", str(sample), "--html", str(out))
    assert code == 0, output
    assert "3-D Secure" in out.read_text(encoding="utf-8")


def test_preview_of_an_unknown_template_fails_with_a_suggestion() -> None:
    """A typo exits 1 and names the template that was probably meant."""
    code, output = invoke("preview", "cart_remider")
    assert code == 1
    assert "cart_reminder" in output


def test_list_shows_every_template_with_channels_and_locales() -> None:
    """The list names each template once per channel with its locales."""
    code, output = invoke("list")
    assert code == 0, output
    assert output.count("payment_failed") == 2 and "en, fr" in output


def test_preview_reads_the_templates_dir_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured only by RECOVERY_* variables (README, "Configuration"), preview finds the operator's templates."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECOVERY_TEMPLATES_DIR", str(TEMPLATES_DIR))
    result = runner.invoke(templates_app, ["preview", "cart_reminder", "--locale", "fr"])
    assert result.exit_code == 0, result.output
    assert "Reprendre mon panier" in result.output


def test_preview_takes_config_like_every_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--config PATH`` (README, "Configuration") gives the templates_dir to preview from."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECOVERY_TEMPLATES_DIR", raising=False)
    config = tmp_path / "recovery.yaml"
    config.write_text(f"templates_dir: {TEMPLATES_DIR}\n", encoding="utf-8")
    for command in (["preview", "cart_reminder", "--locale", "en"], ["list"]):
        result = runner.invoke(templates_app, [*command, "--config", str(config)])
        assert result.exit_code == 0, result.output
        assert "cart_reminder" in result.output
