"""The HTTP app: shopper links, Twilio webhooks, stats, health and metrics over one engine."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recovery.api.auth import Principal, require_role
from recovery.api.health_routes import HttpMetrics, health_router
from recovery.api.pages import SessionStore, install_pages
from recovery.api.platforms.ingest_routes import install_platform_ingest
from recovery.api.platforms.twilio_routes import twilio_router
from recovery.api.request_limits import RequestLimits
from recovery.api.security_headers import SecurityHeaders
from recovery.api.shoppers.callback_offer_routes import callback_offer_router
from recovery.api.shoppers.feedback_routes import feedback_router
from recovery.api.shoppers.links_routes import DEFAULT_CLICK_MAX_AGE, links_router
from recovery.api.staff.agent_routes import agent_router
from recovery.api.staff.callbacks_routes import callbacks_router
from recovery.api.staff.dashboard_routes import dashboard_router
from recovery.api.staff.flow_studio_routes import flow_studio_router
from recovery.api.staff.flows_routes import flows_router
from recovery.api.staff.studio_routes import studio_router
from recovery.api.staff.templates_routes import templates_router
from recovery.api.throttle import FailureThrottle
from recovery.api.throttle_guard import SignInThrottle
from recovery.app.components import link_signer
from recovery.channels.base import Channel
from recovery.clock import Clock
from recovery.consent.authority import AddressKeys
from recovery.desk.agent_lines import AgentLines
from recovery.desk.policy import desk_policy
from recovery.desk.service import DeskService
from recovery.durations import parse_duration
from recovery.keys import LinkKeys, link_keys
from recovery.render.bounds import configure as configure_render
from recovery.render.template_desk import TemplateDesk
from recovery.rules.flow_desk import FlowDesk
from recovery.settings import Settings
from recovery.states import ChannelName
from recovery.stores import StoreDirectory


def create_app(
    *,
    engine: AsyncEngine,
    settings: Settings,
    clock: Clock,
    ready: Callable[[], Awaitable[bool]] | None = None,
    click_max_age: timedelta = DEFAULT_CLICK_MAX_AGE,
) -> FastAPI:
    """Build the app; ``ready`` is the service's own readiness (e.g. broker connected) for ``/readyz``."""
    security = settings.security
    keys = link_keys(security.required_link_secret(), security.previous_link_secret)
    # No API explorer: the same host serves shoppers.
    app = FastAPI(title="cart-recovery", docs_url=None, redoc_url=None, openapi_url=None)
    metrics = HttpMetrics()
    app.state.settings = settings  # read by ``require_role``
    app.state.metrics = metrics
    app.state.http_port = None  # set by ``serve_http`` once it listens
    app.state.sign_in_throttle = SignInThrottle(throttle=FailureThrottle(), clock=clock)
    _include_shopper_routes(app, engine=engine, settings=settings, keys=keys, clock=clock, click_max_age=click_max_age)
    app.include_router(health_router(engine=engine, metrics=metrics, ready=ready))
    _include_staff_routes(app, engine=engine, settings=settings, clock=clock, addresses=AddressKeys(keys.addresses))
    install_pages(app, settings, SessionStore(engine=engine, clock=clock, key=keys.sessions))
    app.include_router(_stats_router(engine=engine, clock=clock))
    install_platform_ingest(app, engine=engine, settings=settings, clock=clock)  # webhooks, schemas, validate
    app.add_middleware(SecurityHeaders)
    # Outside the session and routes: a too large or too slow request is refused before any of them runs.
    app.add_middleware(RequestLimits, read_timeout_s=settings.http.read_timeout.total_seconds())
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    return app


def _include_shopper_routes(
    app: FastAPI,
    *,
    engine: AsyncEngine,
    settings: Settings,
    keys: LinkKeys,
    clock: Clock,
    click_max_age: timedelta,
) -> None:
    """What shoppers and Twilio reach: signed links, SMS webhooks, feedback and the callback offer."""
    signer = link_signer(settings, clock)
    app.include_router(
        links_router(
            engine=engine,
            signer=signer,
            clock=clock,
            link_hosts=settings.security.link_hosts,
            addresses=AddressKeys(keys.addresses),
            click_max_age=click_max_age,
        )
    )
    app.include_router(
        twilio_router(
            engine=engine,
            clock=clock,
            auth_token=settings.channels.sms.auth_token,
            public_url=settings.http.public_url,
            addresses=AddressKeys(keys.addresses),
        )
    )
    app.include_router(
        feedback_router(engine=engine, signer=signer, clock=clock, link_hosts=settings.security.link_hosts)
    )
    policy = desk_policy(settings)
    app.include_router(callback_offer_router(engine=engine, signer=signer, clock=clock, policy=policy))


def _include_staff_routes(
    app: FastAPI, *, engine: AsyncEngine, settings: Settings, clock: Clock, addresses: AddressKeys
) -> None:
    """What signed-in staff use: the template and callback APIs and their pages."""
    configure_render(settings.render.limits())  # previews and save checks render within these bounds
    app.state.template_desk = template_desk = TemplateDesk(
        engine=engine, templates_dir=settings.templates_dir, clock=clock, public_url=settings.http.public_url
    )  # also read by the /studio page
    app.include_router(templates_router(template_desk))
    desk = DeskService(engine=engine, clock=clock, policy=desk_policy(settings), addresses=addresses)
    app.state.desk = desk  # read by the /agent page
    app.include_router(callbacks_router(desk))
    app.state.agent_lines = AgentLines(settings.templates_dir, StoreDirectory.from_settings(settings))
    app.include_router(agent_router())
    app.include_router(studio_router())
    app.include_router(dashboard_router())
    app.state.flow_desk = flow_desk = FlowDesk(engine=engine, settings=settings, clock=clock)  # and the studio
    app.state.flow_channels = flow_channels = _channels(settings)
    app.include_router(flows_router(flow_desk, flow_channels))
    app.include_router(flow_studio_router())


def _channels(settings: Settings) -> Callable[[], Mapping[ChannelName, Channel]]:
    """The email and SMS senders a test send uses, built when one is asked for (the service owns its own)."""

    def build() -> Mapping[ChannelName, Channel]:
        from recovery.app.wiring import build_channels  # the composition root imports this module

        return build_channels(settings)

    return build


def _stats_router(*, engine: AsyncEngine, clock: Clock) -> APIRouter:
    """``GET /api/stats``: the report's figures as JSON, for marketers and admins."""
    router = APIRouter()

    @router.get("/api/stats")
    async def stats(
        _: Annotated[Principal, Depends(require_role("marketer", "admin"))],
        since: Annotated[str | None, Query(description="a duration back from now, e.g. 7d")] = None,
        store: Annotated[str | None, Query(max_length=128, description="one store's figures")] = None,
    ) -> dict[str, Any]:
        from recovery.attribution.queries import build_stats  # the report module is heavy and optional for links

        now = clock.now()
        try:
            start = None if since is None else now - parse_duration(since)
        except (ValueError, OverflowError) as exc:
            raise HTTPException(400, detail=f"since: {exc}") from exc
        return await build_stats(engine, since=start, now=now, store=store or None)

    return router


class _MetricsMiddleware:
    """Counts every answered request by its route template (never the raw path: tokens are in it)."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, capture)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self._metrics.observe(
                method=scope["method"], route=route, status=status, seconds=time.perf_counter() - started
            )
