"""``recovery run`` in its own process, as a supervisor runs it: started, SIGKILLed, stopped and restarted.

Shared by the crash tests (tests/integration/test_crash_*.py) and the chaos bench (bench/chaos.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self


class ServiceProcess:
    """One ``recovery run`` at a time, its output appended to ``log``.

    ``config`` None: configured by ``RECOVERY_*`` only (``env``), as a container is; ``args`` are added to
    ``run`` (e.g. ``["--role", "consumer"]``).
    """

    def __init__(
        self,
        config: Path | None,
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self._argv = [sys.executable, "-m", "recovery.cli.main", "run", *args]
        if config is not None:
            self._argv += ["--config", str(config)]
        self._log = log
        self._env = None if env is None else {**os.environ, **env}
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start the service; also a restart once the previous process has exited."""
        if self.running:
            raise RuntimeError("the service is still running: kill or stop it first")
        with self._log.open("ab") as sink:
            self._process = subprocess.Popen(self._argv, env=self._env, stdout=sink, stderr=subprocess.STDOUT)
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has exited; ``None`` while it runs (or before the first start)."""
        return None if self._process is None else self._process.poll()

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would, and wait until the process is gone."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM and wait for a clean shutdown; SIGKILL if it takes longer than ``timeout`` seconds."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_service(config: Path, log: Path, *, outbox: Path | None = None) -> ServiceProcess:
    """A started service; with ``outbox``, the local outbox channel writes there."""
    env = None if outbox is None else {"RECOVERY_CHANNELS__OUTBOX_DIR": str(outbox)}
    return ServiceProcess(config, log, env=env).start()


def wait_until(check: Callable[..., object], timeout: float, what: str, services: Sequence[ServiceProcess]) -> None:
    """Poll ``check`` until true; fail if ``timeout`` seconds pass or a service exits first."""
    deadline = time.monotonic() + timeout
    while not check():
        for service in services:
            assert service.running, f"service exited early with {service.returncode}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def until_page_answers(url: str, process: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    """Poll ``url`` until it answers 200 (refused connections and error statuses are retried); fail with the
    log's tail once ``process`` has ended or ``deadline`` (monotonic) has passed."""
    while True:
        assert process.poll() is None, log.read_text(encoding="utf-8")[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                assert answer.status == 200
                return
        except OSError:  # refused, reset, or an HTTPError status such as 503
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")[-3000:]
            time.sleep(0.3)
