"""The ASGI application: routes, problem handlers, the body limit, the static files."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from deconflict import __version__
from deconflict.api import (
    coordinates,
    declarations,
    evidence,
    exports,
    imports,
    inbox,
    log,
    openapi,
    parties,
    policy,
    problems,
    subscriptions,
    web,
)
from deconflict.api.limits import BodyLimit
from deconflict.api.ratelimit import RateLimiter
from deconflict.api.serving import redact_access_log
from deconflict.policy import RateLimits
from deconflict.service.deployment import Deployment
from deconflict.service.escalation import EscalationWorker
from deconflict.service.webhooks import WebhookWorker, allowed_of
from deconflict.settings import Settings

DEFAULT_BODY_LIMIT = 4 * 1024 * 1024


def create_app(
    deployment: Deployment, *, settings: Settings | None = None, webhooks: bool = True
) -> FastAPI:
    """The service for one deployment. ``webhooks`` runs the background workers while the
    app is served: webhook delivery and the overdue escalation (tests that move a clock by
    hand turn them off, and sweep when they mean to)."""
    settings = settings or Settings.from_environment()
    webhooks_allowed = allowed_of(settings)  # a malformed allow-list fails here, at start-up

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        redact_access_log()  # uvicorn has configured its loggers by now
        with deployment.reading():
            pass  # load the conflict index before the first request
        # The index's objects live as long as the process: kept out of the collector's full
        # passes, which otherwise walk them all and stall requests in flight (a p99 cost).
        gc.freeze()
        worker = None
        if webhooks:
            worker = WebhookWorker(
                deployment,
                webhooks_allowed,
                timeout_s=settings.webhook_timeout_s,
                max_attempts=settings.webhook_max_attempts,
            )
            worker.start()
        escalation = None
        if webhooks:
            escalation = EscalationWorker(deployment, interval_s=settings.escalation_interval_s)
            escalation.start()
        try:
            yield
        finally:
            if escalation is not None:
                escalation.stop()
            if worker is not None:
                worker.stop()

    app = FastAPI(
        title="deconflict",
        version=__version__,
        summary="Deconfliction between parties that do not trust each other",
        lifespan=lifespan,
        # Swagger UI and ReDoc load their scripts from a CDN; deconflict serves nothing that
        # needs the internet. The schema itself is at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.deployment = deployment
    app.state.settings = settings
    app.state.webhooks_allowed = webhooks_allowed
    app.state.rate_limiter = RateLimiter(lambda: _rate_limits(deployment))
    problems.install(app)
    openapi.install(app)
    for module in (web, parties, declarations, inbox, subscriptions, policy, log, exports):
        app.include_router(module.router)
    app.include_router(imports.router)
    app.include_router(coordinates.router)
    app.include_router(evidence.router)
    app.mount("/static", StaticFiles(packages=[("deconflict", "static")]), name="static")
    app.add_middleware(BodyLimit, limit_of=lambda path: _body_limit(deployment, path))
    # Outermost, so that the body limit's own answers carry the headers too.
    app.add_middleware(web.SecurityHeaders, tile_url=deployment.tile_url)
    return app


def _rate_limits(deployment: Deployment) -> RateLimits:
    # As the body limit: the policy this process last saw (every request brings it up to
    # date), the defaults before it has seen one.
    policy = deployment.known_policy()
    return policy.rate_limits if policy is not None else RateLimits()


def _body_limit(deployment: Deployment, path: str) -> int:
    # The policy this process last saw: this runs on the event loop before the body is read,
    # and must not wait for the database. Every request brings the cache up to date, so a
    # change made by another process applies from the next request on.
    policy = deployment.known_policy()
    if policy is None:
        try:
            policy = deployment.current_policy()  # once, before any request has read it
        except Exception:
            # Before `init` there is no policy; the documented default still protects the
            # parser.
            return DEFAULT_BODY_LIMIT
    # An import's file is larger than any one declaration: its own limit.
    return policy.limits.import_bytes if path == imports.PATH else policy.limits.body_bytes
