"""`recovery flows export DIR` / `import DIR`: live flows to files and back, checked before anything is saved."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from recovery.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def test_export_edit_import_and_a_broken_file_saves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Export writes one YAML per flow; a changed delay imports as version 1; a bad duration is refused by line."""
    monkeypatch.setenv("RECOVERY_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("RECOVERY_CHANNELS__TRANSPORT", "outbox")
    monkeypatch.setenv("RECOVERY_FLOWS_FILE", str(ROOT / "config" / "flows.yaml"))
    monkeypatch.setenv("RECOVERY_TEMPLATES_DIR", str(ROOT / "templates"))
    runner, target = CliRunner(), tmp_path / "flows"
    exported = runner.invoke(app, ["flows", "export", str(target)])
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in target.iterdir()) == ["abandoned_cart.yaml", "payment_failed.yaml"]
    flow = target / "abandoned_cart.yaml"
    flow.write_text(flow.read_text(encoding="utf-8").replace("after: 1h ", "after: 2h ", 1), encoding="utf-8")
    imported = runner.invoke(app, ["flows", "import", str(target)])
    assert imported.exit_code == 0 and "abandoned_cart: version 1" in imported.output, imported.output
    assert "nothing changed" in runner.invoke(app, ["flows", "import", str(target)]).output
    flow.write_text(flow.read_text(encoding="utf-8").replace("after: 2h ", "after: soon ", 1), encoding="utf-8")
    broken = runner.invoke(app, ["flows", "import", str(target)])
    assert broken.exit_code == 1 and "line 6" in broken.output and "nothing was saved" in broken.output
