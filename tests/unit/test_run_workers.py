"""``recovery run --role consumer --workers N``: how many processes, and each worker's command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recovery.cli.main import app
from recovery.cli.workers import allowed_cpus, cpus_from_quota, worker_argv, worker_env
from recovery.ops.worker_slot import WorkerSlot


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [("max 100000", None), ("200000 100000", 2), ("150000 100000", 2), ("50000 100000", 1), ("junk", None)],
)
def test_the_cgroup_quota_rounds_up_to_whole_cpus(cpu_max: str, cpus: int | None) -> None:
    assert cpus_from_quota(cpu_max) == cpus


def test_allowed_cpus_is_at_least_one_and_at_most_the_affinity() -> None:
    import os

    assert 1 <= allowed_cpus() <= len(os.sched_getaffinity(0))


def test_each_worker_runs_the_same_command_as_one_worker() -> None:
    argv = worker_argv(["run", "--role", "consumer", "--workers", "4", "--config", "c.yaml", "--workers=2"])
    one = ["--role", "consumer", "--config", "c.yaml", "--workers", "1"]
    assert argv == [sys.executable, "-m", "recovery.cli.main", "run", *one]


def test_workers_are_refused_for_the_other_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_SECURITY__LINK_SECRET", "x" * 40)
    result = CliRunner().invoke(app, ["run", "--role", "scheduler", "--workers", "2"])
    assert result.exit_code == 2


def test_only_worker_zero_takes_the_configured_port_the_others_a_loopback_one(tmp_path: Path) -> None:
    environ = {"RECOVERY_HTTP__PORT": "8080", "RECOVERY_HTTP__HOST": "0.0.0.0"}
    front = worker_env(environ, WorkerSlot(index=0, count=2, directory=tmp_path))
    other = worker_env(environ, WorkerSlot(index=1, count=2, directory=tmp_path))
    assert (front["RECOVERY_HTTP__HOST"], front["RECOVERY_HTTP__PORT"]) == ("0.0.0.0", "8080")
    assert (other["RECOVERY_HTTP__HOST"], other["RECOVERY_HTTP__PORT"]) == ("127.0.0.1", "0")
    assert WorkerSlot.from_env(other) == WorkerSlot(index=1, count=2, directory=tmp_path)


def test_the_default_is_two_consumers_per_cpu_but_never_more_than_the_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from recovery.cli import workers

    monkeypatch.setattr(workers, "allowed_cpus", lambda: 2)
    monkeypatch.setattr(workers, "allowed_workers_by_memory", lambda: None)
    assert [workers.default_workers(partitions) for partitions in (1, 3, 4, 12)] == [1, 3, 4, 4]


@pytest.mark.parametrize(
    ("memory_max", "held"),
    [
        ("max\n", None),  # no limit
        (f"{768 * 2**20}\n", 2),  # ~150 MiB for the supervisor + ~224 MiB per worker
        (f"{2**30}\n", 3),
        (f"{4 * 2**30}\n", 17),
        (f"{256 * 2**20}\n", 1),  # one worker at least: a limit below it is the operator's to raise
    ],
)
def test_workers_held_by_the_containers_memory_limit(memory_max: str, held: int | None) -> None:
    from recovery.cli.workers import workers_for_memory

    assert workers_for_memory(memory_max) == held


def test_the_default_stays_within_the_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from recovery.cli import workers

    monkeypatch.setattr(workers, "allowed_cpus", lambda: 2)
    monkeypatch.setattr(workers, "CGROUP_MEMORY_MAX", Path("/nonexistent/memory.max"))
    assert workers.default_workers(12) == 4  # no cgroup v2 file: CPUs only
    monkeypatch.setattr(workers, "allowed_workers_by_memory", lambda: 2)
    assert workers.default_workers(12) == 2
