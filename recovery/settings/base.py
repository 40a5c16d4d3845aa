"""What every settings section shares: frozen, no unknown keys; the environment variable of a key."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
)

ENV_PREFIX = "RECOVERY_"


def env_var(key: str) -> str:
    """The environment variable that sets ``key`` (``channels.sms.sender`` → ``RECOVERY_CHANNELS__SMS__SENDER``)."""
    return ENV_PREFIX + "__".join(part.upper() for part in key.split("."))


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
