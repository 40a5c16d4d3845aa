"""Which worker of ``recovery run --role consumer --workers N`` this process is, and where its peers listen.

The supervisor gives each worker its slot in one environment variable (outside ``RECOVERY_*``: it is not a
setting an operator writes) and a private directory. Workers 1..N-1 listen on a free loopback port and write
it there once they listen; worker 0, on the configured port, reads those files to reach them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

WORKER_ENV = "CART_RECOVERY_WORKER"


@dataclass(frozen=True, kw_only=True)
class WorkerSlot:
    """Worker ``index`` of ``count``; ``directory`` holds the other workers' port files."""

    index: int
    count: int
    directory: Path

    @property
    def front(self) -> bool:
        """Worker 0: serves the configured port and answers for the whole group."""
        return self.index == 0

    def to_env(self) -> str:
        return json.dumps({"index": self.index, "count": self.count, "directory": str(self.directory)})

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSlot | None:
        """The slot the supervisor gave this process; ``None`` when it runs alone."""
        raw = environ.get(WORKER_ENV)
        if not raw:
            return None
        fields = json.loads(raw)
        return cls(index=int(fields["index"]), count=int(fields["count"]), directory=Path(fields["directory"]))

    def port_file(self, index: int) -> Path:
        return self.directory / f"worker-{index}.port"

    def announce(self, port: int) -> None:
        """Publish this worker's port, whole or not at all (worker 0 may read at any moment)."""
        partial = self.directory / f".worker-{self.index}.port.partial"
        partial.write_text(str(port), encoding="utf-8")
        os.replace(partial, self.port_file(self.index))

    def peer_port(self, index: int) -> int | None:
        """Worker ``index``'s port once it listens, else ``None``."""
        try:
            return int(self.port_file(index).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
