"""The web page: ``/`` and its static files, and ``/v1/config`` for the page's settings."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

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
