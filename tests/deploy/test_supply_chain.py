"""The image installs exactly what the hashed locks pin, upgrades pip and setuptools, and `make audit` skips fast."""

from __future__ import annotations

import os
import re
import subprocess
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pinned(lock: Path) -> dict[str, str]:
    """``name -> version`` of every requirement in a pip-compile lock, checking each carries a hash."""
    text = lock.read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if match:
            assert "--hash=sha256:" in block, f"{match.group(1)} has no hash in {lock.name}"
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_every_runtime_dependency_is_pinned_with_hashes() -> None:
    """Each dependency of pyproject (and the report extra) has an exact version and hashes in requirements.lock."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["report"]]
    names = {re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in wanted}
    locked = pinned(ROOT / "requirements.lock")
    assert names <= set(locked), f"not in requirements.lock (run `make lock`): {sorted(names - set(locked))}"
    assert "--find-links" not in (ROOT / "requirements.lock").read_text(encoding="utf-8")


def test_the_image_installs_from_the_locks_and_upgrades_setuptools() -> None:
    """Both stages install with --require-hashes; the final stage upgrades the base image's pip and setuptools."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    stages = dockerfile.split("\nFROM ")
    build, final = stages[1], stages[-1]
    assert "--require-hashes -r requirements.lock" in build
    assert "--no-deps" in build  # the service itself adds nothing unpinned
    assert "--require-hashes -r /tmp/requirements-base.lock" in final
    base = pinned(ROOT / "requirements-base.lock")
    major = int(base["setuptools"].split(".")[0])
    assert major >= 78  # 78.1.1 fixed CVE-2025-47273 (path traversal in PackageIndex)


def test_the_audit_is_skipped_in_one_line_when_no_advisory_source_answers() -> None:
    """Offline (an unreachable proxy), `make audit` says so in one line within seconds and does not fail."""
    env = {**os.environ, "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    started = time.perf_counter()
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "audit"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "pip-audit skipped: pypi.org (advisory source) not reachable"
    assert time.perf_counter() - started < 15
