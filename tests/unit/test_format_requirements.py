"""``recovery check`` warns when an input format needs a secret or setting that is missing."""

from __future__ import annotations

from recovery.adapters.requirements import format_warnings
from recovery.settings import Settings


def test_native_topics_without_webhooks_need_nothing() -> None:
    """The default configuration has nothing to warn about."""
    assert format_warnings(Settings()) == []


def test_a_platform_format_without_its_webhook_secret_says_which_key_to_set() -> None:
    """format: shopify with no ingest.shopify.secret names the key and its variable."""
    [warning] = format_warnings(Settings(kafka={"topics": {"cart": {"format": "shopify"}}}))
    assert "kafka.topics.cart.format is shopify" in warning
    assert "ingest.shopify.secret (RECOVERY_INGEST__SHOPIFY__SECRET)" in warning


def test_a_stripe_topic_reminds_that_metadata_cart_id_is_needed() -> None:
    """Stripe events find their cart only through metadata.cart_id."""
    warnings = format_warnings(
        Settings(kafka={"topics": {"payment": {"format": "stripe"}}}, ingest={"stripe": {"secret": "s"}})
    )
    assert any("metadata.cart_id" in warning for warning in warnings)


def test_webhooks_into_a_topic_read_as_another_format_are_flagged() -> None:
    """Webhooks publish native events: a topic read as woocommerce would dead-letter them."""
    settings = Settings(
        kafka={"topics": {"cart": {"format": "woocommerce"}}},
        ingest={"woocommerce": {"secret": "s"}},
        security={"api_tokens": {"tok": "platform"}},
    )
    [warning] = format_warnings(settings)
    assert "ingest.woocommerce.secret is set" in warning and "RECOVERY_KAFKA__TOPICS__CART__FORMAT=native" in warning


def test_webhooks_without_a_platform_token_warn_about_the_validate_api() -> None:
    """A shop taking webhooks is told its integrators have no token for /api/events/validate."""
    assert any("role platform" in w for w in format_warnings(Settings(ingest={"shopify": {"secret": "s"}})))
