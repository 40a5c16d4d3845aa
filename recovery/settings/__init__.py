"""Service configuration: one YAML file plus ``RECOVERY_*`` environment overrides (``__`` between levels).

Built once at start-up and passed down; nothing else reads the environment. One module per group of
sections (``kafka``, ``channels``, ``access``, ``journeys``, ``runtime``, ``stores``), the root model and its
loading in ``root``; everything is importable from here.
"""

from recovery.calendar import QuietHoursPolicy
from recovery.settings.access import (
    ApiToken,
    HttpSettings,
    IngestSettings,
    Role,
    SecuritySettings,
    StripeWebhook,
    WebhookSecret,
)
from recovery.settings.base import ENV_PREFIX, Section, env_var
from recovery.settings.channels import (
    TWILIO_API_BASE_URL,
    ChannelsSettings,
    EmailSettings,
    RetrySettings,
    SmsSettings,
)
from recovery.settings.journeys import (
    AbandonmentSettings,
    AttributionSettings,
    CallbacksSettings,
    GuardsSettings,
    OffersSettings,
)
from recovery.settings.kafka import InputFormat, KafkaSecuritySettings, KafkaSettings, TopicSettings, TopicsSettings
from recovery.settings.root import (
    DEFAULT_CONFIG_PATH,
    Settings,
    config_path,
    describe_validation_error,
    load_settings,
)
from recovery.settings.runtime import (
    DatabaseSettings,
    LoggingSettings,
    RenderSettings,
    RetentionSettings,
    SchedulerSettings,
)
from recovery.settings.stores import PaymentMethod, StoreEmailSettings, StoreSettings, StoreSmsSettings

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "TWILIO_API_BASE_URL",
    "AbandonmentSettings",
    "ApiToken",
    "AttributionSettings",
    "CallbacksSettings",
    "ChannelsSettings",
    "DatabaseSettings",
    "EmailSettings",
    "GuardsSettings",
    "HttpSettings",
    "IngestSettings",
    "InputFormat",
    "KafkaSecuritySettings",
    "KafkaSettings",
    "LoggingSettings",
    "OffersSettings",
    "PaymentMethod",
    "QuietHoursPolicy",
    "RenderSettings",
    "RetentionSettings",
    "RetrySettings",
    "Role",
    "SchedulerSettings",
    "Section",
    "SecuritySettings",
    "Settings",
    "SmsSettings",
    "StoreEmailSettings",
    "StoreSettings",
    "StoreSmsSettings",
    "StripeWebhook",
    "TopicSettings",
    "TopicsSettings",
    "WebhookSecret",
    "config_path",
    "describe_validation_error",
    "env_var",
    "load_settings",
]
