"""The demo's settings: the user's own, on a bundled broker, a fresh SQLite file, local sinks and a fictitious shop."""

from __future__ import annotations

import secrets
from pathlib import Path

from recovery.demo.agents import demo_agent_tokens
from recovery.demo.pages import demo_marketer_token
from recovery.demo.sinks.smtp import SmtpSink
from recovery.demo.sinks.twilio import FakeTwilio
from recovery.ingest.embedded_broker import free_port
from recovery.settings import Settings, StoreSettings

VIRTUAL_SPEED = 3600.0  # one virtual hour per real second: a day and a half in ~40 s
DEMO_HOLDOUT_PERCENT = 10.0  # a control group, so the report can tell what the messages added

# A fictitious shop: the demo's messages speak in its name, as a real shop's would (contract: stores).
DEMO_STORES = {
    "default": StoreSettings.model_validate(
        {
            "name": "Atelier Fictif",
            "address": "1 avenue de l'Exemple, 75000 Paris, France",
            "locale": "en",
            "email": {"sender": "hello@atelier-fictif.example", "reply_to": "help@atelier-fictif.example"},
            "sms": {"stop_text": "Reply STOP to opt out"},
            "terms_url": "https://shop.example.com/terms",
            "payment_methods": ["card", "paypal"],
            "free_shipping_threshold": 60,
        }
    ),
    "fr": StoreSettings.model_validate(
        {
            "name": "Atelier Fictif France",
            "locale": "fr-FR",
            "timezone": "Europe/Paris",
            "country": "FR",
            "sms": {"stop_text": "STOP SMS : répondez STOP"},
            "terms_url": "https://shop.example.com/cgv",
            "payment_methods": ["card", "paypal", "installments"],
        }
    ),
}


def demo_settings(base: Settings, workdir: Path, smtp: SmtpSink, twilio: FakeTwilio) -> Settings:
    """The user's settings on the embedded default: bundled broker, a fresh SQLite file, local sinks."""
    channels = base.channels.model_copy(
        update={
            "outbox_dir": workdir / "outbox",
            "transport": "providers",
            "email": base.channels.email.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port}),
            "sms": base.channels.sms.model_copy(
                update={
                    "account_sid": twilio.account_sid,
                    "auth_token": twilio.auth_token,
                    "sender": base.channels.sms.sender or "+15005550006",
                    "api_base_url": twilio.url,
                }
            ),
        }
    )
    port = free_port()  # links in the demo's messages work while it runs
    return base.model_copy(
        update={
            "http": base.http.model_copy(update={"port": port, "public_url": f"http://127.0.0.1:{port}"}),
            "kafka": base.kafka.model_copy(update={"bootstrap_servers": "embedded"}),
            "database": base.database.model_copy(update={"url": f"sqlite+aiosqlite:///{workdir / 'demo.db'}"}),
            "channels": channels,
            # The user's shop fronts when they named one, else the fictitious shop.
            "stores": base.stores if any(store.name for store in base.stores.values()) else DEMO_STORES,
            # The demo signs its links with a throwaway secret; `recovery run` refuses to start without one.
            "guards": base.guards.model_copy(update={"holdout_percent": DEMO_HOLDOUT_PERCENT}),
            # Claims are timed on the virtual clock: keep the lease two minutes of *real* time.
            "scheduler": base.scheduler.model_copy(update={"lease": base.scheduler.lease * VIRTUAL_SPEED}),
            "security": base.security.model_copy(
                update={
                    "link_secret": base.security.link_secret or secrets.token_urlsafe(32),
                    # Sign-in tokens for the demo's agents (and for you: the demo prints one).
                    "api_tokens": {**base.security.api_tokens, **demo_agent_tokens(), **demo_marketer_token()},
                }
            ),
        }
    )
