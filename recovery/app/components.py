"""The components every process is built from, one way: for ``Service`` and for the test ``Pipeline``.

Settings in, components out; what differs between them (a broker or a list of dead letters, real or
scripted channels, the system or a manual clock) is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncEngine

from recovery.app.policies import address_keys, build_rules, channel_rates, guard_policy
from recovery.channels.base import Channel
from recovery.channels.callback import CallbackChannel
from recovery.clock import Clock
from recovery.consent.authority import AddressKeys
from recovery.desk.policy import desk_policy
from recovery.ingest.batch import BatchProcessor, DeadLetters
from recovery.ingest.platform_formats import PlatformSkips, topic_formats
from recovery.render.signed_links import LinkSigner
from recovery.rules import Flows
from recovery.rules.flow_book import FlowBook
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.steps.discount_hook import DiscountRegistrar
from recovery.steps.dispatch import Dispatcher
from recovery.steps.rendering import Composer
from recovery.steps.scheduler import Scheduler
from recovery.steps.settle import RetryPolicy
from recovery.stores import StoreDirectory


def retry_policy(settings: Settings) -> RetryPolicy:
    """Durable retries after a provider's transient refusal, from ``channels.retry``."""
    retry = settings.channels.retry
    return RetryPolicy(
        in_process_attempts=retry.in_process_attempts,
        base_delay=retry.base_delay,
        max_delay=retry.max_delay,
        max_attempts=retry.max_attempts,
        max_age=retry.max_age,
    )


def link_signer(settings: Settings, clock: Clock | None = None) -> LinkSigner:
    """The one signer of shoppers' links: the current secret, and the previous one while it is honoured."""
    return LinkSigner(
        settings.security.required_link_secret(),
        settings.http.public_url,
        clock=clock,
        previous_secret=settings.security.previous_link_secret,
        previous_until=settings.security.previous_link_secret_until,
    )


def discount_registrar(settings: Settings) -> DiscountRegistrar | None:
    """The shop's discount-code hook, when ``offers.register_url`` is set (the caller closes it)."""
    if not settings.offers.register_url:
        return None
    return DiscountRegistrar(
        url=settings.offers.register_url,
        secret=settings.offers.register_secret or "",  # its own secret (``check`` refuses without it)
        timeout_s=settings.offers.timeout.total_seconds(),
    )


def build_processor(
    settings: Settings,
    *,
    engine: AsyncEngine,
    flows: Flows | FlowBook,
    clock: Clock,
    dead_letters: DeadLetters,
    skips: PlatformSkips | None = None,
    addresses: AddressKeys | None = None,
) -> BatchProcessor:
    """The ingest batch processor: records in, cart state and journeys out, bad input dead-lettered."""
    return BatchProcessor(
        engine=engine,
        rules=build_rules(settings, flows),
        clock=clock,
        dead_letters=dead_letters,
        dead_letter_topic=settings.kafka.topics.dead_letter.name,
        addresses=addresses or address_keys(settings),
        attribution=settings.attribution,
        max_event_bytes=settings.ingest.max_event_bytes,
        formats=topic_formats(settings.kafka.topics),  # platform formats, translated before validation
        skips=skips,
    )


def build_dispatcher(
    settings: Settings,
    *,
    engine: AsyncEngine,
    flows: Flows | FlowBook,
    channels: Mapping[ChannelName, Channel],
    composer: Composer,
    clock: Clock,
    registrar: DiscountRegistrar | None = None,
    addresses: AddressKeys | None = None,
    instrument: Callable[[Channel], Channel] | None = None,
) -> Dispatcher:
    """The dispatcher firing due steps: the provider channels plus the callback channel, guards and retries;
    ``instrument`` wraps every channel (e.g. to time and count its sends)."""
    wrap = instrument or (lambda channel: channel)
    every = {name: wrap(channel) for name, channel in channels.items()}
    if ChannelName.SMS in channels and ChannelName.CALLBACK not in channels:
        # Callbacks need the database (tasks); offers go out through the SMS channel, unwrapped: the callback
        # channel's own wrapper counts an offer once (as a callback send), not a second time as an SMS.
        every[ChannelName.CALLBACK] = wrap(
            CallbackChannel(
                engine=engine, clock=clock, offer_channel=channels[ChannelName.SMS], policy=desk_policy(settings)
            )
        )
    return Dispatcher(
        engine=engine,
        flows=flows,
        channels=every,
        composer=composer,
        guard_policy=guard_policy(settings),
        clock=clock,
        retry=retry_policy(settings),
        registrar=registrar,
        addresses=addresses or address_keys(settings),
        stores=StoreDirectory.from_settings(settings),  # each journey's shop, resolved once here
    )


def build_scheduler(
    settings: Settings, *, engine: AsyncEngine, flows: Flows | FlowBook, dispatcher: Dispatcher, clock: Clock
) -> Scheduler:
    """The scheduler: idle carts into journeys, due steps claimed and fired at each channel's rate."""
    return Scheduler(
        engine=engine,
        rules=build_rules(settings, flows),
        dispatcher=dispatcher,
        clock=clock,
        settings=settings.scheduler,
        concurrency=settings.channels.concurrency,
        channel_concurrency={
            ChannelName.EMAIL.value: settings.channels.email.concurrency,
            ChannelName.SMS.value: settings.channels.sms.concurrency,
        },
        rates=channel_rates(settings),
        desk_policy=desk_policy(settings),
    )
