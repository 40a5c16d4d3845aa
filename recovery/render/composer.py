"""Turning a due step into message text: its template rendered with tracked, signed links."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from recovery.journeys.records import JourneyRow
from recovery.render.files import CHANNEL_PARTS
from recovery.render.live import LiveTemplates, version_label
from recovery.render.short_links import ShortLink, ShortLinker
from recovery.render.signed_links import LinkSigner
from recovery.render.templates import Templates
from recovery.rules import FlowStep
from recovery.states import ChannelName


class PlainComposer:
    """A short factual message naming the cart's value: for steps without a template, and tests."""

    def compose(
        self,
        *,
        step: FlowStep,
        channel: ChannelName,
        journey: JourneyRow,
        context: Mapping[str, Any],
        message_id: str,
        short_links: list[ShortLink] | None = None,
    ) -> tuple[str | None, str, str | None]:
        cart = context["cart"]
        text = f"[{step.template or step.name}] Your cart of {cart.get('value')} {cart.get('currency', '')} is waiting."
        subject = "Your cart is waiting" if channel == ChannelName.EMAIL else None
        return subject, text, None

    def unsubscribe_url(self, customer_key: str, channel: ChannelName) -> str | None:
        """No signer, no link."""
        return None


class TemplateComposer:
    """Renders the step's template (email or SMS part) in the shopper's locale; every link is signed."""

    def __init__(
        self,
        *,
        templates: Templates | LiveTemplates,
        signer: LinkSigner,
        store_locales: Mapping[str, str] | None = None,
    ):
        # Always live: the service's refresh task swaps in saved versions without a restart.
        if isinstance(templates, Templates):
            templates = LiveTemplates(templates.templates_dir, templates)
        self.live = templates
        self._signer = signer
        self._store_locales = dict(store_locales or {})
        self._fallback = PlainComposer()

    def compose(
        self,
        *,
        step: FlowStep,
        channel: ChannelName,
        journey: JourneyRow,
        context: Mapping[str, Any],
        message_id: str,
        short_links: list[ShortLink] | None = None,
    ) -> tuple[str | None, str, str | None]:
        """Subject, text and HTML; an SMS's links become short links, appended to ``short_links`` to store."""
        part = _part(channel)
        templates = self.live.templates
        if step.template is None or not templates.has(step.template, part):
            return self._fallback.compose(
                step=step, channel=channel, journey=journey, context=context, message_id=message_id
            )
        full_context = {**context, "unsubscribe_url": self.unsubscribe_url(journey.customer_key, channel)}
        if channel == ChannelName.CALLBACK:
            # The offer's own link: accepting it creates the agents' task (POST /c/{token}).
            full_context["callback_url"] = self._signer.callback_url(message_id)
        rendered = templates.render(
            step.template,
            channel=part,
            locale=(context.get("customer") or {}).get("locale"),
            store_locale=_store_locale(context) or self._store_locales.get(journey.store),
            context=full_context,
            track=self._tracker(part, message_id, journey.journey_id, short_links),
            feedback=lambda answer: self._signer.feedback_url(journey.journey_id, answer),
        )
        return rendered.subject, rendered.text, rendered.html

    def _tracker(
        self, part: str, message_id: str, journey_id: str, short_links: list[ShortLink] | None
    ) -> Callable[[str], str]:
        """Signed ``/r/`` links; for an SMS whose caller stores them, ``/s/`` short links (two segments, not three)."""
        if part != "sms" or short_links is None:
            return lambda target: self._signer.tracked_url(message_id, target)
        linker = ShortLinker(self._signer.public_url, message_id=message_id, journey_id=journey_id)

        def track(target: str) -> str:
            self._signer.tracked_url(message_id, target)  # the same refusal of non-http(s) targets
            url = linker(target)
            short_links.append(linker.links[-1])
            return url

        return track

    def unsubscribe_url(self, customer_key: str, channel: ChannelName) -> str | None:
        """The signed ``/u/{token}`` link that opts this customer out of ``channel``."""
        return self._signer.unsubscribe_url(customer_key, channel.value)

    def version_of(
        self, *, step: FlowStep, channel: ChannelName, journey: JourneyRow, context: Mapping[str, Any]
    ) -> str | None:
        """The template versions ``compose`` uses for this message now (``None`` without a template)."""
        part = _part(channel)
        templates = self.live.templates
        if step.template is None or not templates.has(step.template, part):
            return None
        locale = templates.choose_locale(
            step.template,
            part,
            (context.get("customer") or {}).get("locale"),
            _store_locale(context) or self._store_locales.get(journey.store),
        )
        return version_label(step.template, part, locale, CHANNEL_PARTS[part], self.live.versions)


def _store_locale(context: Mapping[str, Any]) -> str | None:
    """The language of the journey's store, from the store record the dispatcher put in the context."""
    store = context.get("store")
    locale = store.get("locale") if isinstance(store, Mapping) else None
    return locale if isinstance(locale, str) else None


def _part(channel: ChannelName) -> Literal["email", "sms"]:
    # A callback offer reaches the shopper by SMS; a direct callback has no shopper message at all.
    return "email" if channel == ChannelName.EMAIL else "sms"
