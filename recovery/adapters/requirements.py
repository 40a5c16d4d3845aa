"""What each input format needs besides its topic, for ``recovery check`` (pure: settings in, warnings out)."""

from __future__ import annotations

from recovery.settings import Settings, env_var

WEBHOOK_PLATFORMS = ("shopify", "stripe", "woocommerce")
_ROLES = ("cart", "payment", "order", "consent")


def format_warnings(settings: Settings) -> list[str]:
    """One line per missing secret or conflicting setting, naming the key and its environment variable."""
    topics = settings.kafka.topics
    warnings: list[str] = []
    formatted = {role: getattr(topics, role) for role in _ROLES if getattr(topics, role).format != "native"}
    for role, topic in formatted.items():
        if topic.format in WEBHOOK_PLATFORMS and not getattr(settings.ingest, topic.format).secret:
            env = env_var(f"ingest.{topic.format}.secret")
            warnings.append(
                f"kafka.topics.{role}.format is {topic.format}: only records already on topic '{topic.name}' are "
                f"read; for {topic.format}'s own webhooks (POST /ingest/{topic.format}) set "
                f"ingest.{topic.format}.secret ({env})"
            )
        if topic.format == "stripe":
            warnings.append(
                f"kafka.topics.{role}.format is stripe: every PaymentIntent and Checkout Session must carry "
                "metadata.cart_id, or its events are dead-lettered (see docs/platforms.md)"
            )
    enabled = [name for name in WEBHOOK_PLATFORMS if getattr(settings.ingest, name).secret]
    for role, topic in formatted.items():
        for name in enabled:
            # Webhooks publish native v1 events; a topic read as another format would dead-letter them all.
            warnings.append(
                f"ingest.{name}.secret is set, so POST /ingest/{name} publishes native events to the input "
                f"topics, but kafka.topics.{role}.format is {topic.format}: they would be dead-lettered; "
                f"use a native topic for webhooks (RECOVERY_KAFKA__TOPICS__{role.upper()}__FORMAT=native)"
            )
    tokens = settings.security.api_tokens.values()
    if enabled and not any(token.role in ("platform", "admin") for token in tokens):
        warnings.append(
            "no security.api_tokens entry has role platform: integrators cannot use POST /api/events/validate"
        )
    return warnings
