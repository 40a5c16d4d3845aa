"""Which shop front a message speaks for: ``stores.<id>`` → ``stores.default`` → ``channels.*``, resolved once.

Pure: ``resolve_store(settings, store_id)`` reads only the settings object it is given and returns a frozen
``StoreIdentity``; the dispatcher resolves a journey's store once and hands the record to the renderer
(``store`` in templates) and, through the outgoing message, to the channels (From, Reply-To, SMS sender).
Nothing reads settings while sending. ``store_problems`` is what ``recovery check`` and ``recovery run``
refuse: an email-sending store without a name or address, an alphanumeric SMS sender without ``stop_text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from email.utils import formataddr, parseaddr
from typing import Any

from recovery.calendar import CallingHours, ClosedDays
from recovery.rules import Flows
from recovery.settings import Settings, StoreSettings, env_var
from recovery.states import ChannelName

DEFAULT_STORE = "default"

# Every key a store may set, in the contract's order (``email.sender`` style for the nested ones).
STORE_KEYS = (
    "name",
    "address",
    "locale",
    "timezone",
    "country",
    "closed_days",
    "email.sender",
    "email.reply_to",
    "sms.sender",
    "sms.stop_text",
    "terms_url",
    "support_phone",
    "payment_methods",
    "free_shipping_threshold",
)
# The ``channels.*`` key a store key falls back to when neither the store nor ``stores.default`` sets it.
_CHANNEL_FALLBACK = {"email.sender": ("email", "sender"), "sms.sender": ("sms", "sender")}


@dataclass(frozen=True, kw_only=True)
class StoreIdentity:
    """One shop front as every message of a journey uses it (``id`` is never shown to a shopper)."""

    id: str
    name: str | None = None
    address: str | None = None
    locale: str | None = None
    timezone: str | None = None
    country: str | None = None
    closed_days: tuple[date, ...] = ()
    email_sender: str | None = None
    reply_to: str | None = None
    sms_sender: str | None = None
    stop_text: str | None = None
    terms_url: str | None = None
    support_phone: str | None = None
    payment_methods: tuple[str, ...] = ()
    free_shipping_threshold: Decimal | None = None

    @property
    def closed(self) -> ClosedDays:
        """The days without SMS or calls: the country's public holidays and ``closed_days``."""
        return ClosedDays(country=self.country, dates=frozenset(self.closed_days))

    def email_from(self) -> str | None:
        """The ``From`` header: the store's name as display name, the address of its email sender."""
        address = parseaddr(self.email_sender or "")[1]
        if not address:
            return None
        return formataddr((self.name, address)) if self.name else address

    def template_view(self) -> dict[str, Any]:
        """What templates see as ``store`` (contract: stores.md "Rules"; ``locale`` picks the template's)."""
        return {
            "id": self.id,
            "locale": self.locale,
            "name": self.name,
            "address": self.address,
            "terms_url": self.terms_url,
            "support_phone": self.support_phone,
            "payment_methods": list(self.payment_methods),
            "free_shipping_threshold": self.free_shipping_threshold,
            "reply_to": self.reply_to,
            # Every SMS ends with the opt-out text (contract: stop_text when set).
            "stop_text": self.stop_text,
        }


def _get(store: StoreSettings | None, key: str) -> Any:
    """The value of ``key`` (``email.sender`` style) in ``store``; None when the store or key is unset."""
    value: Any = store
    for part in key.split("."):
        if value is None:
            return None
        value = getattr(value, part)
    return value


def resolve_value(settings: Settings, store_id: str, key: str) -> Any:
    """One key of one store: the store's own, else ``stores.default``'s, else the ``channels.*`` fallback."""
    for source in (settings.stores.get(store_id), settings.stores.get(DEFAULT_STORE)):
        value = _get(source, key)
        if value is not None:
            return value
    fallback = _CHANNEL_FALLBACK.get(key)
    if fallback is None:
        return None
    return getattr(getattr(settings.channels, fallback[0]), fallback[1]) or None


def resolve_store(settings: Settings, store_id: str | None) -> StoreIdentity:
    """The identity of ``store_id`` (``default`` when none) after the fallback order of every key."""
    store = store_id or DEFAULT_STORE
    value = {key: resolve_value(settings, store, key) for key in STORE_KEYS}
    return StoreIdentity(
        id=store,
        name=value["name"],
        address=value["address"],
        locale=value["locale"],
        timezone=value["timezone"],
        country=value["country"],
        closed_days=tuple(value["closed_days"] or ()),
        email_sender=value["email.sender"],
        reply_to=value["email.reply_to"],
        sms_sender=value["sms.sender"],
        stop_text=value["sms.stop_text"],
        terms_url=value["terms_url"],
        support_phone=value["support_phone"],
        payment_methods=tuple(value["payment_methods"] or ()),
        free_shipping_threshold=value["free_shipping_threshold"],
    )


@dataclass(frozen=True, kw_only=True)
class StoreDirectory:
    """Every configured store resolved at start-up; an unlisted store id gets ``stores.default``'s identity."""

    stores: dict[str, StoreIdentity] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreDirectory:
        """Resolve ``default`` and every listed store once."""
        ids = {DEFAULT_STORE, *settings.stores}
        return cls(stores={store: resolve_store(settings, store) for store in ids})

    def get(self, store_id: str | None) -> StoreIdentity:
        """The identity of ``store_id``; an unlisted id speaks as the default store, under its own id."""
        store = store_id or DEFAULT_STORE
        found = self.stores.get(store)
        if found is not None:
            return found
        default = self.stores.get(DEFAULT_STORE) or StoreIdentity(id=DEFAULT_STORE)
        return StoreIdentity(**{**default.__dict__, "id": store})

    def closed_days(self) -> dict[str, ClosedDays]:
        """Each store's closed days, for the calling hours."""
        return {store: identity.closed for store, identity in self.stores.items()}


def store_calling_hours(settings: Settings) -> CallingHours:
    """``callbacks.hours`` with each store's public holidays and closed days: agents call on none of them."""
    hours = settings.callbacks.calling_hours()
    return CallingHours(windows=hours.windows, closed=StoreDirectory.from_settings(settings).closed_days())


def is_alphanumeric_sender(sender: str) -> bool:
    """True for an alphanumeric sender id (``DUPONT``): shoppers cannot reply to it, not even STOP."""
    text = sender.strip()
    return bool(text) and not text.startswith("+") and not text.startswith("MG") and not text.isdigit()


def _env(store: str, key: str) -> str:
    return env_var(f"stores.{store}.{key}")


def _sends(flows: Flows, channel: ChannelName) -> bool:
    """True when an enabled flow step sends by ``channel`` (as its channel or its fallback)."""
    for flow in flows.flows:
        if not flow.enabled:
            continue
        for step in flow.steps:
            used = {step.channel, *([step.fallback] if step.fallback else [])}
            if channel in used or (
                channel == ChannelName.SMS and ChannelName.CALLBACK in used and step.mode != "direct"
            ):
                return True
    return False


def store_problems(settings: Settings, flows: Flows, *, email_configured: bool, sms_configured: bool) -> list[str]:
    """One line per store key a shop cannot go live without, naming the key and its env variable.

    A store that sends email needs a name and an address (the legal footer); one that sends SMS a name
    (every SMS names the shop) and, with an alphanumeric sender, the ``stop_text`` shoppers can use.
    """
    problems: list[str] = []
    directory = StoreDirectory.from_settings(settings)
    email = email_configured and _sends(flows, ChannelName.EMAIL)
    sms = sms_configured and _sends(flows, ChannelName.SMS)
    for store_id, identity in sorted(directory.stores.items()):
        needed = (("name", "address") if email else ()) + (("name",) if sms and not email else ())
        for key in needed:
            if getattr(identity, key) is None:
                problems.append(
                    f"stores.{store_id}.{key} (env {_env(store_id, key)}) is not set: every message names the "
                    "shop it comes from, and every email its address (LCEN art. 20); set it for this store or "
                    "in stores.default"
                )
        if sms and identity.sms_sender and is_alphanumeric_sender(identity.sms_sender) and not identity.stop_text:
            problems.append(
                f"stores.{store_id}.sms.stop_text (env {_env(store_id, 'sms.stop_text')}) is not set: the SMS "
                f"sender {identity.sms_sender!r} is alphanumeric, shoppers cannot reply STOP to it; give the "
                "opt-out text they can use (e.g. 'STOP au 36111')"
            )
    return problems
