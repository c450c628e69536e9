"""Every error answer as RFC 9457 ``application/problem+json``, built in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from deconflict.errors import DeconflictError
from deconflict.requests import field_path

logger = logging.getLogger("deconflict.api")

PROBLEM = "application/problem+json"

_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def problem_response(status: int, body: dict[str, Any]) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status == 429 and "retry_after_s" in body:
        headers["Retry-After"] = str(body["retry_after_s"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


def problem(status: int, title: str, detail: str, code: str | None = None) -> Response:
    return problem_response(
        status,
        {
            "type": "about:blank",
            "status": status,
            "title": title,
            "code": code or _CODES.get(status, "error"),
            "detail": detail,
        },
    )


async def _deconflict_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DeconflictError)
    return problem_response(exc.status, exc.problem())


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
    body = {
        "type": "about:blank",
        "status": 400,
        "title": "Invalid request",
        "code": "invalid_request",
        "detail": f"{first['field']}: {first['message']}",
        "errors": errors,
    }
    return problem_response(400, body)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    return problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))


async def _unexpected(_request: Request, exc: Exception) -> Response:
    # Logged in full for the operator of the service; the client sees no traceback.
    logger.exception("unexpected error", exc_info=exc)
    return problem(
        500,
        "Internal error",
        "the service failed; the request was not applied",
        code="internal_error",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DeconflictError, _deconflict_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
