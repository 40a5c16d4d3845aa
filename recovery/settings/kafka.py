"""``kafka.*``: the broker, its topics and their formats, TLS and SASL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from recovery.settings.base import Section

InputFormat = Literal["native", "cloudevents", "segment", "shopify", "stripe", "woocommerce"]


class TopicSettings(Section):
    name: str
    format: InputFormat = "native"


class TopicsSettings(Section):
    cart: TopicSettings = TopicSettings(name="cart-events")
    payment: TopicSettings = TopicSettings(name="payment-events")
    order: TopicSettings = TopicSettings(name="order-events")
    consent: TopicSettings = TopicSettings(name="consent-events")
    dead_letter: TopicSettings = TopicSettings(name="recovery.dead-letter")
    callback_tasks: TopicSettings = TopicSettings(name="recovery.callback-tasks")
    messages: TopicSettings = TopicSettings(name="recovery.messages")

    @model_validator(mode="before")
    @classmethod
    def _default_names(cls, data: Any) -> Any:
        # ``RECOVERY_KAFKA__TOPICS__CART__FORMAT`` alone must keep the default name, not demand one.
        if isinstance(data, dict):
            data = dict(data)
            for role, field in cls.model_fields.items():
                given = data.get(role)
                if isinstance(given, dict) and "name" not in given and isinstance(field.default, TopicSettings):
                    data[role] = {"name": field.default.name, **given}
        return data

    def inputs(self) -> list[TopicSettings]:
        """The four input topics, in a stable order."""
        return [self.cart, self.payment, self.order, self.consent]


class KafkaSecuritySettings(Section):
    """TLS and SASL for every Kafka client (see recovery/ingest/security.py); the password is never shown."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None  # none: the system's CAs
    cert_file: Path | None = None  # client certificate (mTLS), with key_file unless the key is in it
    key_file: Path | None = None

    @model_validator(mode="after")
    def _credentials_for_sasl(self) -> KafkaSecuritySettings:
        if self.protocol.startswith("SASL_") and (not self.username or not self.password):
            raise ValueError(f"protocol {self.protocol} needs username and password (kafka.security.*)")
        if self.key_file and not self.cert_file:
            raise ValueError("key_file is set without cert_file")
        return self


class KafkaSettings(Section):
    bootstrap_servers: str = "embedded"
    group_id: str = "cart-recovery"
    topics: TopicsSettings = TopicsSettings()
    partitions: int = Field(default=4, ge=1, description="partitions for topics the service creates")
    # -1: the broker's default.replication.factor (MSK and Strimzi: 3 with min.insync.replicas 2)
    replication_factor: int = Field(default=-1, ge=-1, le=32)
    security: KafkaSecuritySettings = KafkaSecuritySettings()

    @field_validator("replication_factor")
    @classmethod
    def _replicas(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 replicas: use -1 for the broker's default, or 1 and more")
        return value

    batch_size: int = Field(default=2000, ge=1, le=50_000)

    @property
    def embedded(self) -> bool:
        return self.bootstrap_servers.strip() == "embedded"
