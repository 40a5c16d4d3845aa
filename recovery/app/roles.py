"""Which parts of the service a process runs (``recovery run --role``), so each part scales on its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from recovery.errors import ConfigError

Role = Literal["all", "consumer", "scheduler", "api"]
ROLES: tuple[str, ...] = get_args(Role)


@dataclass(frozen=True, kw_only=True)
class Parts:
    """The parts one role starts; every role serves HTTP (health, readiness and metrics at least)."""

    consumer: bool  # Kafka batches into the store
    scheduler: bool  # due steps -> dispatchers, and the outbox relay to Kafka
    kafka: bool  # needs a broker connection at all


def parts_of(role: str, *, embedded_broker: bool) -> Parts:
    """The parts of ``role``; the embedded broker lives in one process, so only ``all`` may use it."""
    if role not in ROLES:
        raise ConfigError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    if embedded_broker and role != "all":
        raise ConfigError(
            f"--role {role}: the embedded broker exists only inside one `--role all` process; "
            "set kafka.bootstrap_servers to your Kafka to run roles apart"
        )
    consumer = role in ("all", "consumer")
    scheduler = role in ("all", "scheduler")
    return Parts(consumer=consumer, scheduler=scheduler, kafka=consumer or scheduler)
