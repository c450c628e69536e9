"""``/openapi.json`` documents the API as it answers: every problem, the bearer scheme, the real
request bodies; and an unsupported method is 405 with ``Allow``."""

from __future__ import annotations

from typing import Any

import pytest

from deconflict.api.openapi import ROUTE_PROBLEMS
from support import Service, point, problem_of, volume

PROBLEM = "application/problem+json"
PUBLIC = {"/healthz", "/v1/config"}


def schema_of(service: Service) -> dict[str, Any]:
    answer = service.client.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_route_is_documented_with_its_problems(service: Service) -> None:
    document = schema_of(service)
    documented = {(method, path) for method, path, _ in operations(document)}
    # A new route must say which problems it gives (api/openapi.py, ROUTE_PROBLEMS).
    assert documented == set(ROUTE_PROBLEMS)
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)  # validation errors are 400 problems
        assert {"500", "503"} <= set(responses), (method, path)
        for status, answer in responses.items():
            if int(status) >= 400:
                content = answer["content"]
                assert list(content) == [PROBLEM], (method, path, status)
                assert content[PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"status", "title", "code", "detail"}
    assert {"errors", "missing", "conflicts", "current_version"} <= set(problem["properties"])
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_bearer_scheme_on_every_route_that_needs_a_token(service: Service) -> None:
    document = schema_of(service)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A party's token",
    }
    for method, path, operation in operations(document):
        if path in PUBLIC or path.startswith("/v1/log/"):
            assert operation["security"] == [], (method, path)
            assert "401" not in operation["responses"], (method, path)
        else:
            assert {"bearer": []} in operation["security"], (method, path)
            assert "401" in operation["responses"], (method, path)
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    stream = document["paths"]["/v1/inbox/stream"]["get"]
    assert {"access_token": []} in stream["security"]
    assert list(stream["responses"]["200"]["content"]) == ["text/event-stream"]


def test_declared_bodies_are_the_ones_the_routes_read(service: Service) -> None:
    document = schema_of(service)
    paths = document["paths"]
    policy = paths["/v1/policy"]["put"]["requestBody"]
    assert set(policy["content"]) == {"text/plain", "application/toml"}
    ack = paths["/v1/notifications/{notification_id}/ack"]["post"]["requestBody"]
    assert ack["required"] is False
    assert "comment" in ack["content"]["application/json"]["schema"]["properties"]
    withdraw = paths["/v1/declarations/{declaration_id}"]["delete"]["parameters"]
    assert next(p for p in withdraw if p["name"] == "version")["required"] is True
    volume_schema = document["components"]["schemas"]["VolumeIn"]["properties"]["geometry"]
    assert volume_schema == {"$ref": "#/components/schemas/Geometry"}
    kinds = [g["title"] for g in document["components"]["schemas"]["Geometry"]["oneOf"]]
    assert kinds == ["Point", "LineString", "Polygon", "MultiPolygon"]


def test_each_example_body_is_accepted(service: Service) -> None:
    """The schema's examples are requests the service takes, as their routes' callers."""
    document = schema_of(service)
    humanitarian = service.register("Relief", "humanitarian")
    callers = {"/v1/declarations": humanitarian, "/v1/parties": service.coordinator}
    for method, path, operation in operations(document):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "example" not in body:
            continue
        caller = callers.get(path, humanitarian)
        answer = caller.client.request(method, path, json=body["example"], headers=caller.headers)
        assert answer.status_code in (200, 201), (method, path, answer.text)


def documented(document: dict[str, Any], method: str, path: str) -> set[int]:
    return {int(s) for s in document["paths"][path][method.lower()]["responses"]}


def test_problem_answers_are_documented_for_their_route(service: Service) -> None:
    """Real answers of each kind, each a status its operation documents."""
    document = schema_of(service)
    operator = service.register("Air", "operator")
    site = service.register("Relief", "humanitarian").declare_ok("site", [volume(point(30, 10))])
    site_url = f"/v1/declarations/{site['declaration']['id']}"
    good = {"kind": "operation", "volumes": [volume(point(30, 10))]}
    stale = {"version": "nope", "volumes": good["volumes"]}
    asks: list[tuple[str, str, str, Any, dict[str, str], int]] = [
        ("GET", "/v1/me", "/v1/me", None, {}, 401),
        ("GET", "/v1/inbox/stream", "/v1/inbox/stream", None, {}, 401),
        ("GET", "/v1/inbox/stream", "/v1/inbox/stream", None, {"Last-Event-ID": "x"}, 400),
        ("POST", "/v1/parties", "/v1/parties", {"name": "x", "role": "observer"}, {}, 403),
        ("POST", "/v1/declarations", "/v1/declarations", good, {}, 409),
        ("POST", "/v1/declarations", "/v1/declarations", {"kind": "site"}, {}, 400),
        ("GET", "/v1/declarations/{declaration_id}", "/v1/declarations/dcl_x", None, {}, 404),
        ("PUT", "/v1/declarations/{declaration_id}", site_url, stale, {}, 403),
        ("DELETE", "/v1/declarations/{declaration_id}", site_url, None, {}, 400),
        ("GET", "/v1/log/entries", "/v1/log/entries?start=5&end=1", None, {}, 400),
    ]
    for method, template, url, body, extra, status in asks:
        headers = {} if status == 401 else {**operator.headers, **extra}
        answer = service.client.request(method, url, json=body, headers=headers)
        assert answer.status_code == status, (method, url, answer.text)
        problem_of(answer)
        assert status in documented(document, method, template), (method, template, status)
    missing = operator.post("/v1/declarations", good).json()
    assert missing["code"] == "missing_awareness" and missing["missing"] and missing["conflicts"]


@pytest.mark.parametrize("method", ["TRACE", "PATCH", "OPTIONS", "CONNECT"])
def test_an_unsupported_method_is_405_naming_the_allowed_ones(
    service: Service, method: str
) -> None:
    for path, allowed in [
        ("/v1/declarations", "GET, POST"),
        ("/v1/declarations/dcl_x", "DELETE, GET, PUT"),
        ("/healthz", "GET"),
        ("/v1/log/head", "GET"),
        ("/static/app.css", "GET, HEAD"),
    ]:
        answer = service.client.request(method, path)
        assert answer.status_code == 405, (method, path)
        assert answer.headers["allow"] == allowed, (method, path)
        assert problem_of(answer)["code"] == "method_not_allowed"
