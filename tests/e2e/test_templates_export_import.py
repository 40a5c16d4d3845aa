"""``recovery templates export DIR`` and ``import DIR``: a round trip through files, checked like the API."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from recovery.cli.main import app

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SUBJECT = "en/cart_offer.email.subject"


def config(tmp_path: Path) -> Path:
    path = tmp_path / "recovery.yaml"
    path.write_text(
        f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}\ntemplates_dir: {TEMPLATES}\n",
        encoding="utf-8",
    )
    return path


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_export_edit_import_round_trip(tmp_path: Path) -> None:
    """An exported folder edited in one file imports as one new version; a second import changes nothing."""
    cfg = str(config(tmp_path))
    code, out = cli("templates", "export", str(tmp_path / "out"), "-c", cfg)
    assert code == 0, out
    assert (tmp_path / "out" / SUBJECT).read_text(encoding="utf-8") == (TEMPLATES / SUBJECT).read_text(encoding="utf-8")
    (tmp_path / "out" / SUBJECT).write_text("Still in your cart at {{ store }}", encoding="utf-8")

    code, out = cli("templates", "import", str(tmp_path / "out"), "-c", cfg)
    assert code == 0, out
    assert f"{SUBJECT}: version 1" in out and "1 templates saved" in out

    code, out = cli("templates", "import", str(tmp_path / "out"), "-c", cfg)
    assert code == 0 and "nothing changed" in out
    cli("templates", "export", str(tmp_path / "again"), "-c", cfg)
    assert (tmp_path / "again" / SUBJECT).read_text(encoding="utf-8") == "Still in your cart at {{ store }}"


def test_import_with_a_typo_saves_nothing(tmp_path: Path) -> None:
    """One broken file refuses the whole import, naming the variable."""
    cfg = str(config(tmp_path))
    cli("templates", "export", str(tmp_path / "out"), "-c", cfg)
    (tmp_path / "out" / SUBJECT).write_text("{{ offer.percnt }} % off", encoding="utf-8")
    (tmp_path / "out" / "en/cart_reminder.email.subject").write_text("Fine subject", encoding="utf-8")
    code, out = cli("templates", "import", str(tmp_path / "out"), "-c", cfg)
    assert code == 1 and "offer.percnt" in out and "nothing was saved" in out
    cli("templates", "export", str(tmp_path / "again"), "-c", cfg)
    assert (tmp_path / "again" / "en/cart_reminder.email.subject").read_text(encoding="utf-8") != "Fine subject"
