"""The built wheel, installed in a fresh virtualenv, runs from an empty directory with its shipped defaults."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.process import until_page_answers

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


# The shipped flows send SMS: `recovery check` needs the Twilio settings an operator gives.
TWILIO = {
    "RECOVERY_CHANNELS__SMS__ACCOUNT_SID": "AC" + "0" * 32,
    "RECOVERY_CHANNELS__SMS__AUTH_TOKEN": "token",
    "RECOVERY_CHANNELS__SMS__SENDER": "+33700000000",
    # The shop every message speaks for: check refuses email in the name of a store id (contract stores.md).
    "RECOVERY_STORES__DEFAULT__NAME": "Maison Dupont",
    "RECOVERY_STORES__DEFAULT__ADDRESS": "12 rue des Lilas, 75011 Paris, France",
}


def run(
    *args: str | Path, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("RECOVERY_")} | (env or {})
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment
    )


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv holding only the wheel; its dependencies are read from this test run's site-packages.

    A path line in a .pth file adds the directory without running that directory's own .pth files, so the
    editable install of the checkout stays out: ``import recovery`` finds the wheel.
    """
    base = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", base / "dist", ROOT, cwd=base)
    assert built.returncode == 0, built.stderr
    [wheel] = (base / "dist").glob("cart_recovery-*.whl")
    env = base / "venv"
    assert run(sys.executable, "-m", "venv", "--without-pip", env, cwd=base).returncode == 0
    python = env / "bin" / "python"
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel, cwd=base)
    assert installed.returncode == 0, installed.stderr
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=base).stdout.strip())
    (site / "zz_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    yield env


def test_the_installed_package_is_the_wheel_with_its_defaults(venv: Path, tmp_path: Path) -> None:
    """``recovery`` is imported from the virtualenv, and its config/ and templates/ came with it."""
    probe = "import recovery.cli.defaults as d; print(d.shipped_root())"
    shipped = Path(run(venv / "bin" / "python", "-c", probe, cwd=tmp_path).stdout.strip())
    assert shipped.is_relative_to(venv), shipped
    assert (shipped / "config" / "flows.yaml").is_file() and (shipped / "templates" / "fr").is_dir()


def test_check_from_an_empty_directory_uses_the_shipped_flows_and_templates(venv: Path, tmp_path: Path) -> None:
    """No config/ or templates/ here: ``recovery check`` validates the shipped ones (Twilio configured)."""
    checked = run(venv / "bin" / "recovery", "check", cwd=tmp_path, env=TWILIO)
    assert checked.returncode == 0, checked.stderr
    assert "valid" in checked.stdout


def test_init_writes_editable_copies_and_refuses_to_overwrite(venv: Path, tmp_path: Path) -> None:
    """``recovery init DIR`` writes config/ and templates/ once; a second run asks for --force."""
    first = run(venv / "bin" / "recovery", "init", "deploy", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "deploy" / "config" / "recovery.yaml").is_file()
    assert (tmp_path / "deploy" / "templates" / "en" / "cart_reminder.email.subject").is_file()
    again = run(venv / "bin" / "recovery", "init", "deploy", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    checked = run(venv / "bin" / "recovery", "check", cwd=tmp_path / "deploy", env=TWILIO)
    assert checked.returncode == 0, checked.stderr


def test_a_short_demo_runs_from_an_empty_directory(venv: Path, tmp_path: Path) -> None:
    """The whole demo on the shipped sample events, flows and templates: messages go out."""
    demo = run(
        venv / "bin" / "recovery", "demo", "--exit", "--carts", "10", "--workdir", tmp_path / "var", cwd=tmp_path
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "Sent " in demo.stdout and "messages" in demo.stdout


def image_defaults(dockerfile: str) -> tuple[str, dict[str, str], str]:
    """The final stage's WORKDIR, its ``RECOVERY_*`` ENV defaults and the directory it makes writable for the
    service user, read from the Dockerfile so the test follows it."""
    final = dockerfile.split("\nFROM ")[-1].replace("\\\n", " ")
    (workdir,) = re.findall(r"^WORKDIR (\S+)", final, flags=re.M)
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV (.+)$", final, flags=re.M):
        env |= dict(pair.split("=", 1) for pair in line.split())
    user = re.findall(r"^USER (\d+)", final, flags=re.M)[-1]
    (data,) = re.findall(rf"^RUN install -d -o {user} -g \d+ -m \d+ (\S+)$", final, flags=re.M)
    return workdir, {key: value for key, value in env.items() if key.startswith("RECOVERY_")}, data


def test_the_api_role_runs_from_a_read_only_directory_as_the_image_does(venv: Path, tmp_path: Path) -> None:
    """As in the image: its WORKDIR with config/ and templates/, read-only but for the data directory, and
    its ENV defaults: ``recovery check`` passes, ``recovery run --role api`` answers /healthz on every
    interface (0.0.0.0) and creates its SQLite database in the data directory."""
    workdir, defaults, data_dir = image_defaults((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    assert defaults["RECOVERY_HTTP__HOST"] == "0.0.0.0"
    root = tmp_path / "image"

    def inside(path: str) -> Path:
        return root / path.lstrip("/")

    app = inside(workdir)
    for name in ("config", "templates"):  # COPY config ./config, COPY templates ./templates
        shutil.copytree(ROOT / name, app / name)
    data = inside(data_dir)
    data.mkdir()
    before = sorted(path.relative_to(app) for path in app.rglob("*") if not path.is_relative_to(data))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    image_env = {key: str(inside(value)) if value.startswith("/") else value for key, value in defaults.items()}
    env = (
        TWILIO
        | image_env
        | {
            "RECOVERY_SECURITY__LINK_SECRET": "wheel-test-link-secret-" + "x" * 32,
            "RECOVERY_KAFKA__BOOTSTRAP_SERVERS": "kafka.invalid:9092",  # the api role never connects
            "RECOVERY_HTTP__PORT": str(port),  # the image's 8080 may be taken on this machine
        }
    )
    app.chmod(0o555)
    try:
        checked = run(venv / "bin" / "recovery", "check", cwd=app, env=env)
        assert checked.returncode == 0, checked.stderr
        # 127.0.0.2 is this machine too, but a server bound to 127.0.0.1 only does not answer there.
        serve_api(venv, app, env, data / "run.log", f"http://127.0.0.2:{port}")
        assert (data / "recovery.db").stat().st_size > 0
        # As root the mode bits do not stop a write: the directory must also be exactly as it was.
        assert sorted(path.relative_to(app) for path in app.rglob("*") if not path.is_relative_to(data)) == before
    finally:
        app.chmod(0o755)


def serve_api(venv: Path, cwd: Path, env: dict[str, str], log_path: Path, base: str) -> None:
    """Run ``recovery run --role api`` until /healthz then /readyz answer at ``base``, then stop it (exit 0)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")} | env
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / "recovery"), "run", "--role", "api"], cwd=cwd, env=environment, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 60
            for page in ("healthz", "readyz"):
                until_page_answers(f"{base}/{page}", process, log_path, deadline)
        finally:
            process.terminate()
            assert process.wait(timeout=30) == 0
