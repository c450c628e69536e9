"""What every route needs: the deployment, the calling party, and the JSON body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from deconflict.deployment import Deployment
from deconflict.errors import Unauthorized
from deconflict.parties import Party, authenticate

T = TypeVar("T")


def deployment_of(request: Request) -> Deployment:
    deployment: Deployment = request.app.state.deployment
    return deployment


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


async def caller(request: Request) -> Party:
    """The authenticated party (401 otherwise); a FastAPI dependency."""
    return await run_in_threadpool(authenticate, deployment_of(request), bearer_token(request))


async def blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking service call (database, geometry) off the event loop."""
    return await run_in_threadpool(function, *args, **kwargs)
