"""What every route needs: the deployment, the calling party (authenticated, throttled and
rate-limited), and the JSON body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from deconflict.api.ratelimit import RateLimiter
from deconflict.errors import Unauthorized
from deconflict.service.deployment import Deployment
from deconflict.service.parties import Party, authenticate

T = TypeVar("T")


def deployment_of(request: Request) -> Deployment:
    deployment: Deployment = request.app.state.deployment
    return deployment


def rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def client_address(request: Request) -> str:
    """The peer's address, as the failed-authentication throttle counts it (behind a proxy,
    the proxy's: run the proxy's own limits there)."""
    return request.client.host if request.client else "unknown"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def bearer(request: Request) -> str:
    """The bearer token, not yet checked (401 when there is none); for routes that check it
    together with their own work, in one trip to a worker thread."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("send `Authorization: Bearer <token>`")
    return token


async def authenticated(request: Request, token: str | None) -> Party:
    """The party holding ``token`` (401 otherwise), unless the client's address is locked
    out for presenting too many bad tokens (429, even with a good one); a bad token counts
    towards that lock-out."""
    limiter = rate_limiter(request)
    address = client_address(request)
    limiter.check_address(address)
    try:
        return await run_in_threadpool(_authenticate_fresh, deployment_of(request), token)
    except Unauthorized:
        if token:
            limiter.failed(address)
        raise


def _authenticate_fresh(deployment: Deployment, token: str | None) -> Party:
    # The counters read first bring the policy cache up to date (one statement when nothing
    # changed), so the rate limits taken next are those in force.
    counters, _ = deployment.fresh()
    return authenticate(deployment, token, counters)


async def caller(request: Request) -> Party:
    """The authenticated party (401 otherwise), within its rate of writes for any method
    that is not a read (429 otherwise); a FastAPI dependency."""
    party = await authenticated(request, bearer_token(request))
    if request.method not in READS:
        rate_limiter(request).admit(party.id, "write")
    return party


READS = frozenset({"GET", "HEAD", "OPTIONS"})


async def blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking service call (database, geometry) off the event loop."""
    return await run_in_threadpool(function, *args, **kwargs)
