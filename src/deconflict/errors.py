"""The errors deconflict raises, and the one place that knows their HTTP shape.

    DeconflictError                 any failure a client can be told about
    ├── InvalidRequest      400     malformed JSON, wrong types, missing fields, bad values
    │   └── InvalidGeometry 400     bad GeoJSON, out-of-range or non-finite coordinates, bad rings
    ├── Unauthorized        401     no or unknown token
    ├── Forbidden           403     the role or party may not do this
    ├── NotFound            404     does not exist, or is not visible to the caller
    ├── Conflict            409     (abstract) the write contradicts the current state
    │   ├── MissingAwareness 409    the key lacks current versions of conflicting declarations
    │   └── StaleVersion    409     the version sent is not the current version
    ├── TooLarge            413     body, vertex count, volume count, extent or work over the limits
    ├── RateLimited         429     too many requests, or failed authentications, for now
    └── AlreadyInitialised          `deconflict init` on an initialised database (CLI only)

Lower libraries' exceptions (sqlite3, psycopg, shapely, pyproj) are translated at the storage
and geometry boundaries with ``raise ... from exc``; nothing else reaches the HTTP layer, and
the HTTP layer turns anything unexpected into a bare 500 without a traceback.
"""

from __future__ import annotations

import math
from typing import Any


class DeconflictError(Exception):
    """Base of every error a client may see. ``code`` is the machine code of API.md."""

    status: int = 400
    code: str = "invalid_request"
    title: str = "Invalid request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: list[dict[str, str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors or [])
        if field is not None and not self.errors:
            self.errors.append({"field": field, "message": detail})
        self.extra = dict(extra or {})

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        return problem_document(
            self.status, self.title, self.code, self.detail, errors=self.errors, extra=self.extra
        )


def problem_document(
    status: int,
    title: str,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An RFC 9457 problem document: the one place its members are written, for the errors
    here and for the answers the HTTP layer gives on its own (404, 405, 500)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "status": status,
        "title": title,
        "code": code,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    body.update(extra or {})
    return body


class InvalidRequest(DeconflictError):
    status = 400
    code = "invalid_request"
    title = "Invalid request"


class InvalidGeometry(InvalidRequest):
    code = "invalid_geometry"
    title = "Invalid geometry"


class Unauthorized(DeconflictError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(DeconflictError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(DeconflictError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DeconflictError):
    status = 409
    code = "conflict"
    title = "Conflict"


class MissingAwareness(Conflict):
    code = "missing_awareness"
    title = "Missing awareness"


class JustificationRequired(Conflict):
    """An operation that conflicts with a protected declaration it can see, without a
    written ``justification`` (API.md v1.1); the body lists the ``protected`` ones."""

    code = "justification_required"
    title = "Justification required"


class StaleVersion(Conflict):
    code = "stale_version"
    title = "Stale version"


class TooLarge(DeconflictError):
    status = 413
    code = "too_large"
    title = "Too large"


class RateLimited(DeconflictError):
    """Over a rate limit; ``retry_after`` seconds (rounded up) go in ``Retry-After``."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail, extra={"retry_after_s": max(1, math.ceil(retry_after))})
        self.retry_after = max(1, math.ceil(retry_after))


class AlreadyInitialised(DeconflictError):
    status = 409
    code = "already_initialised"
    title = "Already initialised"
