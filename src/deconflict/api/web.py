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


# On every answer; see SecurityHeaders.
EVERY_ANSWER = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    """Pure ASGI middleware: security headers on every answer.

    The web page and its static files get the page's Content-Security-Policy. Every other
    answer is the API's: data for a program, holding tokens (``POST /v1/parties``) and what
    a party may see, so ``Cache-Control: no-store`` keeps it out of shared and browser
    caches (unless the route chose its own caching, as the event stream does). Every answer
    gets ``nosniff`` (no answer is ever read as another type), ``no-referrer`` (URLs may
    carry the stream's token) and ``X-Frame-Options: DENY`` (nothing is framed, as the
    page's ``frame-ancestors 'none'`` says for browsers that read only the older header).
    """

    def __init__(self, app: ASGIApp, tile_url: str | None) -> None:
        self.app = app
        self.every = [(k.lower().encode(), v.encode()) for k, v in EVERY_ANSWER.items()]
        self.page = [
            (b"content-security-policy", content_security_policy(tile_url).encode()),
            *self.every,
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        is_page = path == "/" or path.startswith("/static/")
        added = self.page if is_page else self.every

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not is_page and not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = [*headers, *added]
            await send(message)

        await self.app(scope, receive, with_headers)
