"""Rendering a message to send: the composer's protocol, and the render itself, off the event loop and labelled
with the template versions it was rendered with."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from recovery.journeys.records import JourneyRow
from recovery.render.offload import off_loop, off_loop_each
from recovery.render.short_links import ShortLink
from recovery.rules import FlowStep
from recovery.states import ChannelName
from recovery.steps.decide import Rendered, SendMessage

__all__ = ["Composer", "VersionedComposer", "render", "render_many"]

_RELABEL_TRIES = 3  # renders of one message when a template refresh lands during its render


class Composer(Protocol):
    """Turns a step and its context into the message's subject, text and HTML."""

    def compose(
        self,
        *,
        step: FlowStep,
        channel: ChannelName,
        journey: JourneyRow,
        context: Mapping[str, Any],
        message_id: str,
        short_links: list[ShortLink] | None = None,
    ) -> tuple[str | None, str, str | None]: ...

    def unsubscribe_url(self, customer_key: str, channel: ChannelName) -> str | None:
        """The one-click unsubscribe link for this customer and channel (None: the composer has none)."""
        ...


@runtime_checkable
class VersionedComposer(Protocol):
    """A composer that can say which template versions a message is rendered with."""

    def version_of(
        self, *, step: FlowStep, channel: ChannelName, journey: JourneyRow, context: Mapping[str, Any]
    ) -> str | None: ...


async def render(composer: Composer, plan: SendMessage, context: Mapping[str, Any]) -> Rendered:
    """Compose in a render thread (a slow template never stalls the loop; one past ``render.deadline``
    raises ``TemplateError``) and label it with the template versions it was rendered with."""
    for _ in range(_RELABEL_TRIES):
        # Templates are swapped only on the loop: the same label before and after means no swap in between.
        before = _version(composer, plan, context)
        short_links: list[ShortLink] = []  # filled by the composer: the SMS's short links, stored with it
        subject, text, html = await off_loop(None, _compose_call(composer, plan, context, short_links))
        version = _version(composer, plan, context)
        if version == before:
            break
    return _rendered(composer, plan, (subject, text, html), version, short_links)


async def render_many(
    composer: Composer, plans: Sequence[tuple[SendMessage, Mapping[str, Any]]]
) -> list[Rendered | Exception]:
    """``render`` for each (plan, context) in one render-thread hop (each under its own deadline); an error is
    returned in its message's place. A message whose templates were swapped during the batch renders alone."""
    befores = [_version(composer, plan, context) for plan, context in plans]
    links: list[list[ShortLink]] = [[] for _ in plans]
    calls = [_compose_call(composer, plan, context, found) for (plan, context), found in zip(plans, links, strict=True)]
    results: list[Rendered | Exception] = []
    composed = await off_loop_each(calls)
    for (plan, context), before, parts, found in zip(plans, befores, composed, links, strict=True):
        version = _version(composer, plan, context)
        if isinstance(parts, Exception):
            results.append(parts)
        elif version == before:
            results.append(_rendered(composer, plan, parts, version, found))
        else:
            try:
                results.append(await render(composer, plan, context))
            except Exception as exc:
                results.append(exc)
    return results


def _compose_call(
    composer: Composer, plan: SendMessage, context: Mapping[str, Any], short_links: list[ShortLink]
) -> Callable[[], tuple[str | None, str, str | None]]:
    """The composer's call for ``plan``, to run in a render thread; it fills ``short_links``."""
    return functools.partial(
        composer.compose,
        step=plan.flow_step,
        channel=plan.identity.channel,
        journey=plan.journey,
        context=context,
        message_id=plan.identity.message_id,
        short_links=short_links,
    )


def _rendered(
    composer: Composer,
    plan: SendMessage,
    parts: tuple[str | None, str, str | None],
    version: str | None,
    short_links: list[ShortLink],
) -> Rendered:
    channel, journey = plan.identity.channel, plan.journey
    # RFC 8058 List-Unsubscribe(-Post) headers on every marketing email.
    unsubscribe = composer.unsubscribe_url(journey.customer_key, channel) if channel == ChannelName.EMAIL else None
    subject, text, html = parts
    return Rendered(
        subject=subject,
        text=text,
        html=html,
        version=version,
        unsubscribe_url=unsubscribe,
        short_links=tuple(short_links),
    )


def _version(composer: Composer, plan: SendMessage, context: Mapping[str, Any]) -> str | None:
    if not isinstance(composer, VersionedComposer):
        return None
    return composer.version_of(
        step=plan.flow_step, channel=plan.identity.channel, journey=plan.journey, context=context
    )
