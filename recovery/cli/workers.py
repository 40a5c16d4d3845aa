"""``recovery run --role consumer --workers N``: consumer processes, by default two per CPU the container may use.

One Python process uses at most one core for decoding and building rows, and it waits for the database for part
of each batch (its statements run while only the next batch's decoding can go on): with one process per CPU the
CPUs stood 65-87 % busy in ``bench.ingest``, with two 93-95 % and 25-35 % more events a second. A pod given 2 CPUs
runs 4 consumers, each its own member of the consumer group (Kafka spreads the partitions over them); never more
than the topics' partitions, as a consumer without a partition sits idle, nor than the container's memory
limit holds (``SUPERVISOR_MIB`` + ``WORKER_MIB`` each). This process only
supervises: it starts the workers, passes SIGTERM/SIGINT on, and when one worker dies it stops the others
and exits with an error, so the orchestrator restarts the pod as it would a single consumer.
Worker 0 serves HTTP on the configured port; the others on a free loopback port, which they write in a private
directory. Worker 0's ``/metrics`` shows every worker's series and its ``/readyz`` fails while any worker is
not ready (recovery/ops/peers.py), so one scrape and one probe of the pod see the whole group.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from recovery.ops.worker_slot import WORKER_ENV, WorkerSlot

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")
# Resident memory measured in bench.ingest (100 k events, kafka.batch_size 2 000): 134 MB for this supervisor,
# 189-206 MB per worker (a batch being written and the next one decoded). The Helm chart sizes with the same.
SUPERVISOR_MIB = 150
WORKER_MIB = 224
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def cpus_from_quota(cpu_max: str) -> int | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` line (``"200000 100000"`` → 2, ``"max 100000"`` → None)."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def allowed_cpus() -> int:
    """The CPUs this process may use: its affinity, capped by the container's CPU limit (cgroup v2)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    try:
        quota = cpus_from_quota(CGROUP_CPU_MAX.read_text(encoding="utf-8"))
    except OSError:
        quota = None
    return max(1, min(count, quota) if quota else count)


def workers_for_memory(memory_max: str) -> int | None:
    """The workers a cgroup v2 ``memory.max`` (bytes, or ``max``) holds with this supervisor; None: no limit."""
    try:
        limit = int(memory_max.strip())
    except ValueError:
        return None  # "max": unlimited
    return max(1, (limit // 2**20 - SUPERVISOR_MIB) // WORKER_MIB)


def allowed_workers_by_memory() -> int | None:
    """The workers the container's memory limit holds (None: no limit, or not cgroup v2)."""
    try:
        return workers_for_memory(CGROUP_MEMORY_MAX.read_text(encoding="utf-8"))
    except OSError:
        return None


WORKERS_PER_CPU = 2


def default_workers(partitions: int) -> int:
    """``--workers``' default: two consumers per allowed CPU, no more than the input topics' partitions, nor than
    the container's memory limit holds (four workers in 768 MiB would be OOM-killed)."""
    by_memory = allowed_workers_by_memory()
    count = min(WORKERS_PER_CPU * allowed_cpus(), partitions)
    return max(1, count if by_memory is None else min(count, by_memory))


def worker_argv(argv: Sequence[str]) -> list[str]:
    """This command line for one worker: the same options, ``--workers 1``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return [sys.executable, "-m", "recovery.cli.main", *out, "--workers", "1"]


def worker_env(environ: Mapping[str, str], slot: WorkerSlot) -> dict[str, str]:
    """Worker ``slot``'s environment: its slot, and for workers 1..N-1 a free port reachable from the pod only."""
    env = {**environ, WORKER_ENV: slot.to_env()}
    if not slot.front:
        env |= {"RECOVERY_HTTP__HOST": "127.0.0.1", "RECOVERY_HTTP__PORT": "0"}
    return env


def supervise(argv: Sequence[str], count: int) -> int:
    """Run ``count`` workers until SIGTERM/SIGINT (exit 0) or until one exits on its own (exit 1)."""
    with tempfile.TemporaryDirectory(prefix="recovery-workers-") as directory:
        return _supervise(argv, count, Path(directory))


def _supervise(argv: Sequence[str], count: int, directory: Path) -> int:
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    command = worker_argv(argv)
    workers = [
        subprocess.Popen(
            command,
            env=worker_env(os.environ, WorkerSlot(index=index, count=count, directory=directory)),
            preexec_fn=_die_with_parent,  # only prctl between fork and exec: safe with threads
        )
        for index in range(count)
    ]
    failed = False
    while not stopping and not failed:
        failed = any(worker.poll() is not None for worker in workers)
        time.sleep(0.2)
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait()
    return 1 if failed else 0


def _die_with_parent() -> None:
    """SIGKILL this worker when the supervisor dies, even by SIGKILL: no orphan keeps consuming (Linux only)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
