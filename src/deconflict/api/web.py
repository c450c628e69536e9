"""The web page: ``/`` and its static files, and ``/v1/config`` for the page's settings."""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deconflict.api.deps import deployment_of

router = APIRouter(tags=["web"])

STATIC = resources.files("deconflict").joinpath("static")


@router.get("/", include_in_schema=False)
async def index() -> Response:
    return FileResponse(str(STATIC.joinpath("index.html")), media_type="text/html")


@router.get("/v1/config")
async def config(request: Request) -> dict[str, Any]:
    """Settings the web page needs; no secrets."""
    return {"tile_url": deployment_of(request).tile_url}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def content_security_policy(tile_url: str | None) -> str:
    """The page loads nothing but its own files (and tiles from the configured server)."""
    images = "'self' data:"
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        images += f" {parts.scheme}://{parts.netloc.replace('a.', '*.', 1)}"
    return (
        f"default-src 'self'; img-src {images}; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


class PageHeaders:
    """Pure ASGI middleware: security headers on the web page and its static files."""

    def __init__(self, app: ASGIApp, tile_url: str | None) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", content_security_policy(tile_url).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != "/" and not path.startswith("/static/"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers)
