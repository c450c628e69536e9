"""Every error answer as RFC 9457 ``application/problem+json``, built in one place."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount

from deconflict.api.web import EVERY_ANSWER
from deconflict.errors import (
    Conflict,
    DeconflictError,
    Forbidden,
    InvalidRequest,
    NotFound,
    TooLarge,
    Unauthorized,
    problem_document,
)
from deconflict.requests import field_path

logger = logging.getLogger("deconflict.api")

PROBLEM = "application/problem+json"

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})

# The machine code of an answer the HTTP layer gives on its own: that of the error class of
# its status, else Starlette's own statuses.
_CODES = {
    error.status: error.code
    for error in (InvalidRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge)
} | {405: "method_not_allowed", 415: "unsupported_media_type", 422: "invalid_request"}


def problem_response(
    status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 429 and "retry_after_s" in body:
        headers["Retry-After"] = str(body["retry_after_s"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def error_response(error: DeconflictError) -> Response:
    return problem_response(error.status, error.problem())


def problem(
    status: int,
    title: str,
    detail: str,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = problem_document(status, title, code or _CODES.get(status, "error"), detail)
    return problem_response(status, body, headers)


async def _deconflict_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DeconflictError)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        location = tuple(error["loc"])
        # Drop FastAPI's "query"/"path"/"body" prefix: the field is what the client named.
        if location and location[0] in ("query", "path", "body", "header"):
            location = location[1:]
        errors.append({"field": field_path(location), "message": error["msg"]})
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return error_response(InvalidRequest(f"{first['field']}: {first['message']}", errors=errors))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the methods of the first route on the path (and the static
        # files none): RFC 9110 wants every method the path has.
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem(
        exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail), headers=headers
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on the request's path: each method is
    tried against the routes (included routers hide their routes' method sets)."""
    # The path as the app's router saw it: a mount (the static files) moved root_path on.
    scope = {
        "type": "http",
        "path": request.scope["path"],
        "root_path": request.scope.get("app_root_path", request.scope.get("root_path", "")),
    }
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Mount):
            if route.matches({**scope, "method": "GET"})[0] is not Match.NONE:
                methods |= {"GET", "HEAD"}  # the static files
            continue
        for method in METHODS - methods:
            if route.matches({**scope, "method": method})[0] is Match.FULL:
                methods.add(method)
    # A path that is some route's own literal path (``/v1/declarations/import``) is answered
    # only by the routes written for it: a templated neighbour (``/v1/declarations/{id}``)
    # would take it as an id and answer 404, so its methods are not the path's.
    own = request.app.openapi().get("paths", {}).get(scope["path"])
    if own:
        methods &= {method.upper() for method in own}
    return sorted(methods)


async def _unexpected(_request: Request, exc: Exception) -> Response:
    # Logged in full for the operator of the service; the client sees no traceback.
    logger.exception("unexpected error", exc_info=exc)
    return problem(
        500,
        "Internal error",
        "the service failed; the request was not applied",
        code="internal_error",
        # Starlette sends this answer outside every middleware, SecurityHeaders too.
        headers={**EVERY_ANSWER, "Cache-Control": "no-store"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DeconflictError, _deconflict_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
