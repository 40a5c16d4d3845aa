"""A default `helm install` starts: the rendered Deployment's files, environment and command, run for real.

No cluster here, so the closest thing to a pod: the chart is rendered by the Helm engine, its ConfigMaps are
laid out at the Deployment's mount paths under a temporary root, the image's working directory is laid out as
the Dockerfile does (WORKDIR /app with config/ and templates/), the Secret's keys are given as an operator's
Secret would, and `recovery check` and `recovery run` run with the container's environment and arguments.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.process import until_page_answers

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "cart-recovery"
RECOVERY = Path(sys.executable).parent / "recovery"

# The operator's Secret: what `kubectl create secret generic shop-cart-recovery --from-literal=...` would hold.
SECRET = {
    "link-secret": "a-long-random-link-secret-for-the-test",
    "twilio-account-sid": "AC" + "0" * 32,
    "twilio-auth-token": "twilio-token",
}
# What an operator sets for the shop: the SMS sender, and the shop every message speaks for (stores.md).
SHOP = {"default": {"name": "Maison Dupont", "address": "12 rue des Lilas, 75011 Paris, France"}}
SENDER = {"config": {"recovery": {"channels": {"sms": {"sender": "+33700000000"}}, "stores": SHOP}}}
INLINE_FLOWS = (ROOT / "config" / "flows.yaml").read_text(encoding="utf-8")
OVERRIDE = {"config": {"templatesFromImage": False, "flows": INLINE_FLOWS, **SENDER["config"]}}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    rendered = helm.Chart.load(str(CHART)).render(values, name="shop", namespace="recovery", is_install=True)
    return [
        doc
        for path, text in rendered.items()
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


class Pod:
    """One rendered Deployment's container, laid out under ``root`` as a kubelet would mount it."""

    def __init__(self, docs: list[dict[str, Any]], root: Path, database: Path) -> None:
        (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
        spec = deployment["spec"]["template"]["spec"]
        (self.container,) = spec["containers"]
        self.root = root
        config_maps = {doc["metadata"]["name"]: doc["data"] for doc in docs if doc["kind"] == "ConfigMap"}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        for mount in self.container["volumeMounts"]:
            self._mount(volumes[mount["name"]], mount, config_maps)
        # The image: WORKDIR /app holding config/ and templates/ (Dockerfile `COPY config`, `COPY templates`).
        self.workdir = root / "app"
        for name in ("config", "templates"):
            shutil.copytree(ROOT / name, self.workdir / name)
        self.env = self._environment(database)

    def path(self, absolute: str) -> str:
        """A container path, inside the temporary root."""
        return str(self.root / absolute.lstrip("/")) if absolute.startswith("/") else absolute

    def _mount(self, volume: dict[str, Any], mount: dict[str, Any], config_maps: dict[str, dict[str, str]]) -> None:
        target = Path(self.path(mount["mountPath"]))
        if "emptyDir" in volume:
            target.mkdir(parents=True, exist_ok=True)
            return
        data = config_maps[volume["configMap"]["name"]]
        if "subPath" in mount:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[mount["subPath"]], encoding="utf-8")  # a KeyError here: pod stuck in creation
            return
        items = volume["configMap"].get("items") or [{"key": key, "path": key} for key in data]
        for item in items:
            (target / item["path"]).parent.mkdir(parents=True, exist_ok=True)
            (target / item["path"]).write_text(data[item["key"]], encoding="utf-8")

    def _environment(self, database: Path) -> dict[str, str]:
        secret = {**SECRET, "database-url": f"sqlite+aiosqlite:///{database}"}
        env = {key: value for key, value in os.environ.items() if not key.startswith("RECOVERY_")}
        for item in self.container["env"]:
            if "value" in item:
                env[item["name"]] = self.path(item["value"])
                continue
            ref = item["valueFrom"]["secretKeyRef"]
            if ref["key"] in secret:
                env[item["name"]] = secret[ref["key"]]
            else:
                assert ref.get("optional"), f"{item['name']}: required key {ref['key']} missing from the Secret"
        return env

    def args(self, **replace: str) -> list[str]:
        """The container's arguments, paths moved under the root, options replaced (e.g. role='api')."""
        args = [self.path(arg) for arg in self.container["args"]]
        for option, value in replace.items():
            args[args.index(f"--{option}") + 1] = value
        return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["defaults", "configmap override"])
def pod(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pod]:
    values = SENDER if request.param == "defaults" else OVERRIDE
    yield Pod(render(values), tmp_path / "pod", tmp_path / "recovery.db")


def test_the_chart_mounts_the_image_defaults_or_the_operator_override(pod: Pod) -> None:
    """Defaults mount only the settings file; the override mounts flows.yaml and templates with their samples."""
    mounts = {mount["mountPath"] for mount in pod.container["volumeMounts"]}
    env = {item["name"] for item in pod.container["env"]}
    if "RECOVERY_TEMPLATES_DIR" in env:
        assert {"/etc/recovery/flows.yaml", "/etc/recovery/templates"} <= mounts
        assert (pod.root / "etc/recovery/templates/samples/en_cart.json").is_file()
    else:
        assert mounts == {"/etc/recovery/recovery.yaml", "/tmp"}
        assert "RECOVERY_FLOWS_FILE" not in env


def test_check_passes_and_the_api_role_starts_and_answers_healthz(pod: Pod) -> None:
    """`recovery check` exits 0 and `recovery run --role api` serves /healthz, from the chart's own files."""
    checked = subprocess.run(
        [str(RECOVERY), "check", "--config", pod.path("/etc/recovery/recovery.yaml")],
        cwd=pod.workdir,
        env=pod.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    port = free_port()  # the chart's 8080 may be taken on this machine
    env = {**pod.env, "RECOVERY_HTTP__PORT": str(port)}
    log = pod.root / "run.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(RECOVERY), *pod.args(role="api")], cwd=pod.workdir, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        until_page_answers(f"http://127.0.0.1:{port}/healthz", process, log, deadline)
        while True:  # /healthz answers at once; ready once the schema is there (created on this empty database)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
                    assert answer.status == 200
                    break
            except urllib.error.HTTPError as unready:
                assert unready.code == 503 and time.monotonic() < deadline, log.read_text(encoding="utf-8")[-3000:]
                time.sleep(0.3)
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text(encoding="utf-8")[-3000:]
    assert "not starting" not in log.read_text(encoding="utf-8")
