"""The OpenAPI document at ``/openapi.json``: the API as it answers, not only as it succeeds.

FastAPI documents each route's success and a 422 the service never sends (its validation
errors are 400 problems). Here every route also gets each problem answer it can give, as
``application/problem+json`` with one ``Problem`` schema, and the bearer scheme where a token
is needed, so generated clients and fuzzers (``tests/api/test_schemathesis.py``) see the real API.

Which problems a route gives is said in ``ROUTE_PROBLEMS`` below, next to the reason; a route
missing from it fails ``tests/api/test_openapi.py``, so a new route cannot go undocumented.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from deconflict.api.problems import PROBLEM
from deconflict.requests import AckIn

BEARER = "bearer"
ACCESS_TOKEN = "access_token"

# Routes anyone may call without a token (API.md, Authentication).
PUBLIC_PATHS = frozenset({"/healthz", "/v1/config"})
PUBLIC_PREFIXES = ("/v1/log/",)

# The problems each route can answer besides those every route shares (below). Ordered by
# path; the comment says which rule of the route gives the status.
ROUTE_PROBLEMS: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/healthz"): (),
    ("GET", "/v1/config"): (),
    ("GET", "/v1/me"): (),
    ("PUT", "/v1/me/webhook"): (400, 413),  # a URL the webhook rules refuse
    ("GET", "/v1/parties"): (),
    ("POST", "/v1/parties"): (400, 403, 413),  # 403: only the coordinator registers
    ("DELETE", "/v1/parties/{party_id}"): (403, 404),  # 403: coordinator, not itself
    ("GET", "/v1/declarations"): (400,),  # bbox, start, end, kind
    ("POST", "/v1/declarations"): (400, 403, 409, 413),  # 403: kind by role; 409: awareness
    # 400: format, dry_run, a file that is not its format; 403: not an importing role;
    # 413: over limits.import_bytes or limits.import_rows. A row's own errors are a 200.
    ("POST", "/v1/declarations/import"): (400, 403, 413),
    ("GET", "/v1/declarations/{declaration_id}"): (404,),
    ("PUT", "/v1/declarations/{declaration_id}"): (400, 403, 404, 409, 413),
    ("DELETE", "/v1/declarations/{declaration_id}"): (400, 403, 404, 409),  # 400: no version
    ("GET", "/v1/declarations/{declaration_id}/opening"): (400, 403, 404),
    ("GET", "/v1/declarations/{declaration_id}/conflicts"): (404,),
    ("GET", "/v1/declarations/{declaration_id}/deliveries"): (403, 404),
    ("GET", "/v1/declarations/{declaration_id}/evidence"): (400, 403, 404),  # 400: format
    ("POST", "/v1/conflicts/check"): (400, 413),
    ("GET", "/v1/coordinates"): (400,),  # text that is no position
    ("GET", "/v1/inbox"): (400,),
    ("GET", "/v1/inbox/stream"): (400,),  # a Last-Event-ID that is no seq
    ("POST", "/v1/notifications/{notification_id}/ack"): (400, 404, 413),  # 404: not theirs
    ("GET", "/v1/notifications/{notification_id}/opening"): (404,),  # 404: not theirs
    ("GET", "/v1/notifications/overdue"): (),
    ("GET", "/v1/subscriptions"): (),
    ("POST", "/v1/subscriptions"): (400, 413),
    ("DELETE", "/v1/subscriptions/{subscription_id}"): (404,),  # 404: not the caller's
    ("GET", "/v1/policy"): (),
    ("PUT", "/v1/policy"): (400, 403, 413),  # 400: not TOML, or not a valid policy
    ("GET", "/v1/export"): (400,),  # format, kind
    ("GET", "/v1/log/head"): (404,),  # the record is empty
    ("GET", "/v1/log/public-key"): (),
    ("GET", "/v1/log/entries"): (400,),
    ("GET", "/v1/log/proof/inclusion"): (400,),
    ("GET", "/v1/log/proof/consistency"): (400,),
}

_DESCRIPTIONS = {
    400: "Invalid request (`invalid_request`, `invalid_geometry`): `errors` names each field",
    401: "No or unknown token (`unauthorized`)",
    403: "The caller's role or party may not do this (`forbidden`)",
    404: "Does not exist, or is not visible to the caller (`not_found`)",
    409: "The write contradicts the current state: `missing_awareness` (with `missing` and "
    "`conflicts`), `justification_required` (with `protected` and `conflicts`), "
    "`stale_version` (with `current_version`)",
    413: "Body, vertex count, volume count, extent or cost over the policy's limits "
    "(`too_large`): `errors` names what is over",
    429: "Too many requests, or too many failed authentications (`rate_limited`): "
    "`Retry-After` says when to try again",
    500: "The service failed; the request was not applied (`internal_error`)",
    503: "The service cannot answer now (`unavailable`): `Retry-After` says when to try again",
}

_RETRY_AFTER = {
    "description": "Seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 0},
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}

_REF = {
    "type": "object",
    "description": "A declaration named by id, kind, owner and version",
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string"},
        "owner": {"type": "string"},
        "version": {"type": "string"},
    },
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "An RFC 9457 problem document; `code` is the machine code of API.md.",
    "required": ["status", "title", "code", "detail"],
    "properties": {
        "type": {"type": "string", "default": "about:blank"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "title": {"type": "string"},
        "code": {"type": "string", "examples": ["invalid_request", "missing_awareness"]},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Each field at fault, named as API.md writes it (`volumes[0].time.end`)",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "missing": {
            "type": "array",
            "description": "`missing_awareness`: current versions the key lacks",
            "items": _REF,
        },
        "protected": {
            "type": "array",
            "description": "`justification_required`: the protected declarations (visible to "
            "the caller) that the operation conflicts with",
            "items": _REF,
        },
        "conflicts": {
            "type": "array",
            "description": "`missing_awareness`, `justification_required`: every conflict the "
            "caller can see",
            "items": {"type": "object"},
        },
        "current_version": {
            "type": ["string", "null"],
            "description": "`stale_version`: the declaration's current version",
        },
    },
}


_NUMBER = {"type": "number"}
_POSITION = {
    "type": "array",
    "description": "[longitude, latitude], or with an altitude, which is ignored",
    "prefixItems": [
        {"type": "number", "minimum": -180, "maximum": 180},
        {"type": "number", "minimum": -90, "maximum": 90},
    ],
    "items": _NUMBER,
    "minItems": 2,
    "maxItems": 3,
}
_RING = {"type": "array", "items": _POSITION, "minItems": 4, "description": "closed"}
_POLYGON = {"type": "array", "items": _RING, "minItems": 1}


def _geometry_type(kind: str, coordinates: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "title": kind,
        "required": ["type", "coordinates"],
        "properties": {"type": {"const": kind}, "coordinates": coordinates},
    }


# What ``geo.geojson.parse_geometry`` reads. Rules JSON Schema cannot say (a closed ring that
# does not cross itself, the policy's vertex and extent limits) are 400 and 413 problems.
GEOMETRY_SCHEMA: dict[str, Any] = {
    "title": "Geometry",
    "description": "A GeoJSON (RFC 7946) geometry, WGS84",
    "oneOf": [
        _geometry_type("Point", _POSITION),
        _geometry_type("LineString", {"type": "array", "items": _POSITION, "minItems": 2}),
        _geometry_type("Polygon", _POLYGON),
        _geometry_type("MultiPolygon", {"type": "array", "items": _POLYGON, "minItems": 1}),
    ],
}


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def problems_of(method: str, path: str) -> tuple[int, ...]:
    """Every problem status of one route, sorted: its own, and those every route shares."""
    # Any request may meet a service that failed (500) or is not ready (503).
    statuses = {*ROUTE_PROBLEMS[(method, path)], 500, 503}
    if path != "/healthz":
        # Rate limits (per party, and on failed authentication per address) can stop any
        # request but the health check before its route runs.
        statuses.add(429)
    if not is_public(path):
        statuses.add(401)
    return tuple(sorted(statuses))


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            complete(document)
            app.openapi_schema = document
        return app.openapi_schema

    # FastAPI calls ``app.openapi`` for its route; the attribute is meant to be replaced.
    setattr(app, "openapi", openapi)  # noqa: B010 - mypy refuses assigning to a method


def complete(document: dict[str, Any]) -> None:
    """Add the problems, the security schemes and the real request bodies to ``document``."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)  # the service answers 400 problems instead
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["Geometry"] = GEOMETRY_SCHEMA
    schemas["VolumeIn"]["properties"]["geometry"] = {"$ref": "#/components/schemas/Geometry"}
    components["securitySchemes"] = {
        BEARER: {"type": "http", "scheme": "bearer", "description": "A party's token"},
        ACCESS_TOKEN: {
            "type": "apiKey",
            "in": "query",
            "name": "access_token",
            "description": "The token as a query parameter: the event stream only, for "
            "browsers' EventSource, which cannot send headers",
        },
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            _complete_operation(method.upper(), path, operation)
    _link(document)


def _complete_operation(method: str, path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    responses.pop("422", None)
    for status in problems_of(method, path):
        responses[str(status)] = _problem_response(status)
    if is_public(path):
        operation["security"] = []
    elif path == "/v1/inbox/stream":
        operation["security"] = [{BEARER: []}, {ACCESS_TOKEN: []}]
    else:
        operation["security"] = [{BEARER: []}]
    _example(method, path, operation)
    fix = _FIXES.get((method, path))
    if fix is not None:
        fix(operation)


def _problem_response(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": _DESCRIPTIONS[status],
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status in _HEADERS:
        answer["headers"] = _HEADERS[status]
    return answer


# -- routes that read their body or answer something FastAPI cannot see ------------------


_HOUR = {"start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z"}
_VOLUME = {
    "geometry": {"type": "Point", "coordinates": [30.0, 10.0]},
    "buffer_m": 300,
    "altitude": {"lower_m": 0, "upper_m": None},
    "time": _HOUR,
}
_SQUARE = {
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[29.9, 9.9], [30.1, 9.9], [30.1, 10.1], [29.9, 10.1], [29.9, 9.9]]],
    },
    "altitude": {"lower_m": 0, "upper_m": 3000},
    "time": _HOUR,
}
# A valid request of each body, for readers and for schemathesis's examples phase.
_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/declarations"): {"kind": "site", "volumes": [_VOLUME], "category": "hospital"},
    ("POST", "/v1/conflicts/check"): {"kind": "operation", "volumes": [_SQUARE]},
    ("POST", "/v1/subscriptions"): {"volumes": [_SQUARE], "kinds": ["operation", "site"]},
    ("POST", "/v1/parties"): {"name": "Relief Without Borders", "role": "humanitarian"},
    ("PUT", "/v1/me/webhook"): {"url": None},
}


def _example(method: str, path: str, operation: dict[str, Any]) -> None:
    example = _EXAMPLES.get((method, path))
    if example is not None:
        operation["requestBody"]["content"]["application/json"]["example"] = example


def _policy_body(operation: dict[str, Any]) -> None:
    text = {"schema": {"type": "string", "description": "The policy as TOML"}}
    operation["requestBody"] = {
        "required": True,
        "content": {"text/plain": text, "application/toml": text},
    }


def _import_body(operation: dict[str, Any]) -> None:
    text = {"schema": {"type": "string", "description": "The file, as `format` says"}}
    octets = {"schema": {"type": "string", "format": "binary"}}
    operation["requestBody"] = {
        "required": True,
        "content": {
            "text/csv": text,
            "application/geo+json": text,
            "application/vnd.google-earth.kml+xml": text,
            "application/octet-stream": octets,
        },
    }
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "format":
            parameter["required"] = True
            parameter["schema"] = {"type": "string", "enum": ["csv", "xlsx", "geojson", "kml"]}
        elif parameter["name"] == "dry_run":
            parameter["schema"] = {"type": "string", "enum": ["true", "false"]}


def _ack_body(operation: dict[str, Any]) -> None:
    operation["requestBody"] = {
        "required": False,
        "description": "Optional: an empty body acknowledges (response `acknowledged`) "
        "without a comment; a later one with another response or a new comment changes the "
        "answer",
        "content": {"application/json": {"schema": AckIn.model_json_schema()}},
    }


def _stream(operation: dict[str, Any]) -> None:
    operation["parameters"] = [
        {
            "name": "after",
            "in": "query",
            "required": False,
            "description": "Resume after this seq (as `Last-Event-ID` does)",
            "schema": {"type": "integer", "minimum": 0},
        },
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "description": "The seq of the last event received",
            "schema": {"type": "integer", "minimum": 0},
        },
    ]
    operation["responses"]["200"] = {
        "description": "Server-sent events: one `notification` event per notification",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }


def _no_content(operation: dict[str, Any]) -> None:
    operation["responses"]["204"] = {"description": "Deleted"}


def _version_required(operation: dict[str, Any]) -> None:
    for parameter in operation["parameters"]:
        if parameter["name"] == "version":
            parameter["required"] = True
            parameter["schema"] = {"type": "string", "description": "The current version"}


_FIXES: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("PUT", "/v1/policy"): _policy_body,
    ("POST", "/v1/declarations/import"): _import_body,
    ("POST", "/v1/notifications/{notification_id}/ack"): _ack_body,
    ("GET", "/v1/inbox/stream"): _stream,
    ("DELETE", "/v1/subscriptions/{subscription_id}"): _no_content,
    ("DELETE", "/v1/declarations/{declaration_id}"): _version_required,
}

# OpenAPI links: where the ids a route needs come from, so that a client (and schemathesis's
# stateful phase) can follow a created resource to the routes that use it.
_DECLARATION = {
    "declaration_id": "$response.body#/declaration/id",
}
_LINKS: dict[tuple[str, str, str], list[tuple[str, str, dict[str, str]]]] = {
    ("POST", "/v1/declarations", "201"): [
        ("GET", "/v1/declarations/{declaration_id}", _DECLARATION),
        ("GET", "/v1/declarations/{declaration_id}/conflicts", _DECLARATION),
        ("GET", "/v1/declarations/{declaration_id}/deliveries", _DECLARATION),
        (
            "GET",
            "/v1/declarations/{declaration_id}/opening",
            {**_DECLARATION, "version": "$response.body#/declaration/version"},
        ),
        (
            "DELETE",
            "/v1/declarations/{declaration_id}",
            {**_DECLARATION, "version": "$response.body#/declaration/version"},
        ),
    ],
    ("POST", "/v1/parties", "201"): [
        ("DELETE", "/v1/parties/{party_id}", {"party_id": "$response.body#/id"}),
    ],
    ("POST", "/v1/subscriptions", "201"): [
        (
            "DELETE",
            "/v1/subscriptions/{subscription_id}",
            {"subscription_id": "$response.body#/subscription/id"},
        ),
    ],
}


def _link(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for (method, path, status), targets in _LINKS.items():
        links = paths[path][method.lower()]["responses"][status].setdefault("links", {})
        for target_method, target_path, parameters in targets:
            target = paths[target_path][target_method.lower()]
            links[target["operationId"]] = {
                "operationId": target["operationId"],
                "parameters": parameters,
            }
