"""Every row of API.md's error table, and the rule that no client mistake gets a 500."""

from __future__ import annotations

from typing import Any

import pytest

from support import Actor, Service, point, problem_of, volume

GOOD = volume(point(36.0, 34.0))


def with_volume(**changes: Any) -> dict[str, Any]:
    body = {"kind": "operation", "volumes": [dict(GOOD, **changes)]}
    return body


def ring(*coords: tuple[float, float]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[list(c) for c in coords]]}


INVALID_REQUEST = [
    ("missing kind", {"volumes": [GOOD]}, "kind"),
    ("unknown kind", {"kind": "strike", "volumes": [GOOD]}, "kind"),
    ("volumes not a list", {"kind": "operation", "volumes": "here"}, "volumes"),
    ("no volumes", {"kind": "operation", "volumes": []}, "volumes"),
    (
        "missing time",
        {"kind": "operation", "volumes": [{"geometry": GOOD["geometry"]}]},
        "volumes[0].time",
    ),
    (
        "end before start",
        with_volume(time={"start": "2026-12-05T10:00:00Z", "end": "2026-12-05T09:00:00Z"}),
        "volumes[0].time",
    ),
    (
        "time without zone",
        with_volume(time={"start": "2026-12-05T10:00:00", "end": None}),
        "volumes[0].time.start",
    ),
    (
        "time not a time",
        with_volume(time={"start": "tomorrow", "end": None}),
        "volumes[0].time.start",
    ),
    ("negative buffer", with_volume(buffer_m=-5), "volumes[0].buffer_m"),
    ("buffer is a string", with_volume(buffer_m="wide"), "volumes[0].buffer_m"),
    (
        "altitude upside down",
        with_volume(altitude={"lower_m": 5000, "upper_m": 100}),
        "volumes[0].altitude",
    ),
    ("unknown volume field", with_volume(colour="red"), "volumes[0].colour"),
    ("key not a list", {"kind": "operation", "volumes": [GOOD], "key": "abc"}, "key"),
    (
        "metadata not an object",
        {"kind": "operation", "volumes": [GOOD], "metadata": [1]},
        "metadata",
    ),
]


@pytest.mark.parametrize(
    ("body", "field"), [c[1:] for c in INVALID_REQUEST], ids=[c[0] for c in INVALID_REQUEST]
)
def test_invalid_request_names_the_field(cast: dict[str, Actor], body: Any, field: str) -> None:
    answer = cast["north"].post("/v1/declarations", body)
    assert answer.status_code == 400, answer.text
    problem = problem_of(answer)
    assert problem["code"] == "invalid_request"
    assert field in [e["field"] for e in problem["errors"]], problem


INVALID_GEOMETRY = [
    ("unknown type", {"type": "Circle", "coordinates": [36, 34]}, "volumes[0].geometry.type"),
    ("longitude out of range", point(181, 34), "volumes[0].geometry.coordinates"),
    ("latitude out of range", point(36, -91), "volumes[0].geometry.coordinates"),
    (
        "not numbers",
        {"type": "Point", "coordinates": ["36", "34"]},
        "volumes[0].geometry.coordinates",
    ),
    (
        "unclosed ring",
        ring((36, 34), (36.1, 34), (36.1, 34.1), (36, 34.1)),
        "volumes[0].geometry.coordinates",
    ),
    (
        "self-intersecting ring",
        ring((36, 34), (36.1, 34.1), (36.1, 34), (36, 34.1), (36, 34)),
        "volumes[0].geometry.coordinates",
    ),
    ("too few positions", ring((36, 34), (36.1, 34), (36, 34)), "volumes[0].geometry.coordinates"),
    (
        "line of one position",
        {"type": "LineString", "coordinates": [[36, 34]]},
        "volumes[0].geometry.coordinates",
    ),
    ("missing coordinates", {"type": "Point"}, "volumes[0].geometry"),
]


@pytest.mark.parametrize(
    ("geometry", "field"), [c[1:] for c in INVALID_GEOMETRY], ids=[c[0] for c in INVALID_GEOMETRY]
)
def test_invalid_geometry_names_the_field(
    cast: dict[str, Actor], geometry: Any, field: str
) -> None:
    answer = cast["north"].post("/v1/declarations", with_volume(geometry=geometry))
    assert answer.status_code == 400, answer.text
    problem = problem_of(answer)
    assert problem["code"] == "invalid_geometry"
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem


def test_nan_coordinates_are_invalid_geometry(cast: dict[str, Actor]) -> None:
    raw = (
        '{"kind":"operation","volumes":[{"geometry":{"type":"Point","coordinates":[NaN,34]},'
        '"time":{"start":"2026-12-05T10:00:00Z","end":null}}]}'
    )
    answer = cast["north"].client.post(
        "/v1/declarations",
        content=raw,
        headers={**cast["north"].headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert problem_of(answer)["code"] in ("invalid_geometry", "invalid_request")


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b"null", b'"text"', b"\xff\xfe", b""],
    ids=["broken", "array", "null", "string", "not utf-8", "empty"],
)
def test_malformed_bodies(cast: dict[str, Actor], raw: bytes) -> None:
    answer = cast["north"].client.post(
        "/v1/declarations",
        content=raw,
        headers={**cast["north"].headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert problem_of(answer)["code"] == "invalid_request"


def test_unauthorized(service: Service) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        answer = service.client.get("/v1/declarations", headers=headers)
        assert answer.status_code == 401
        assert problem_of(answer)["code"] == "unauthorized"
    # The public parts need no token.
    assert service.client.get("/healthz").json() == {"status": "ok"}
    assert service.client.get("/v1/log/head").status_code == 200
    assert service.client.get("/openapi.json").status_code == 200


def test_revoked_party_is_unauthorized(cast: dict[str, Actor]) -> None:
    assert cast["coordinator"].delete(f"/v1/parties/{cast['south'].id}").status_code == 200
    assert cast["south"].get("/v1/declarations").status_code == 401


def test_not_found(cast: dict[str, Actor]) -> None:
    for url in (
        "/v1/declarations/dcl_nope",
        "/v1/declarations/dcl_nope/conflicts",
        "/v1/declarations/dcl_nope/deliveries",
        "/v1/nothing-here",
    ):
        answer = cast["north"].get(url)
        assert answer.status_code == 404, url
        assert problem_of(answer)["code"] == "not_found"
    assert cast["north"].post("/v1/notifications/ntf_nope/ack", {}).status_code == 404


TOO_LARGE = [
    ("volume count", {"kind": "operation", "volumes": [GOOD] * 101}, "volumes"),
    ("buffer", with_volume(buffer_m=500_001), "volumes[0].buffer_m"),
    (
        "vertex count",
        with_volume(
            geometry={
                "type": "LineString",
                "coordinates": [[36 + i * 1e-5, 34 + (i % 2) * 1e-5] for i in range(10_001)],
            }
        ),
        "volumes[0].geometry",
    ),
    (
        "extent",
        with_volume(geometry={"type": "LineString", "coordinates": [[20, 10], [60, 50]]}),
        "volumes[0].geometry",
    ),
]


@pytest.mark.parametrize(
    ("body", "field"), [c[1:] for c in TOO_LARGE], ids=[c[0] for c in TOO_LARGE]
)
def test_too_large(cast: dict[str, Actor], body: Any, field: str) -> None:
    answer = cast["north"].post("/v1/declarations", body)
    assert answer.status_code == 413, answer.text
    problem = problem_of(answer)
    assert problem["code"] == "too_large"
    assert field in [e["field"] for e in problem["errors"]]


def test_body_over_the_limit_is_refused_before_parsing(cast: dict[str, Actor]) -> None:
    huge = (
        b'{"kind": "operation", "volumes": [], "metadata": {"x": "'
        + b"a" * (4 * 1024 * 1024)
        + b'"}}'
    )
    answer = cast["north"].client.post(
        "/v1/declarations",
        content=huge,
        headers={**cast["north"].headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert problem_of(answer)["code"] == "too_large"


def test_bad_query_parameters(cast: dict[str, Actor]) -> None:
    for query, field in [
        ("bbox=1,2,3", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("start=yesterday", "start"),
        ("kind=strike", "kind"),
        ("start=2026-12-05T00:00:00Z&end=2026-12-04T00:00:00Z", "end"),
    ]:
        answer = cast["north"].get(f"/v1/declarations?{query}")
        assert answer.status_code == 400, query
        assert field in [e["field"] for e in problem_of(answer)["errors"]]
    for url in (
        "/v1/inbox?after=-1",
        "/v1/inbox?limit=0",
        "/v1/inbox?after=x",
        "/v1/log/entries?start=a&end=2",
        "/v1/log/proof/inclusion?index=5&size=2",
        "/v1/log/proof/consistency?first=3&second=2",
    ):
        answer = cast["north"].get(url)
        assert answer.status_code == 400, (url, answer.text)
        problem_of(answer)


def test_delete_without_version(cast: dict[str, Actor]) -> None:
    made = cast["north"].declare_ok("operation", [GOOD])["declaration"]
    answer = cast["north"].delete(f"/v1/declarations/{made['id']}")
    assert answer.status_code == 400
    assert problem_of(answer)["errors"][0]["field"] == "version"


def test_restriction_must_say_whom_it_restricts(cast: dict[str, Actor]) -> None:
    answer = cast["coordinator"].declare("restriction", [GOOD])
    assert answer.status_code == 400
    assert problem_of(answer)["errors"][0]["field"] == "restricts"
    unknown = cast["coordinator"].declare("restriction", [GOOD], restricts={"parties": ["pty_x"]})
    assert problem_of(unknown)["errors"][0]["field"] == "restricts.parties[0]"


def test_method_not_allowed_is_a_problem(cast: dict[str, Actor]) -> None:
    answer = cast["north"].client.patch("/v1/declarations", headers=cast["north"].headers)
    assert answer.status_code == 405
    problem_of(answer)


def test_no_500_for_odd_but_valid_json(cast: dict[str, Actor]) -> None:
    bodies: list[Any] = [
        {"kind": "operation", "volumes": [dict(GOOD, geometry=None)]},
        {"kind": "operation", "volumes": [dict(GOOD, geometry=[])]},
        {
            "kind": "operation",
            "volumes": [dict(GOOD, geometry={"type": "Point", "coordinates": []})],
        },
        {
            "kind": "operation",
            "volumes": [dict(GOOD, geometry={"type": "Point", "coordinates": [[1, 2]]})],
        },
        {
            "kind": "operation",
            "volumes": [dict(GOOD, geometry={"type": "Polygon", "coordinates": [1, 2]})],
        },
        {
            "kind": "operation",
            "volumes": [dict(GOOD, geometry={"type": "MultiPolygon", "coordinates": [[[]]]})],
        },
        {"kind": "operation", "volumes": [dict(GOOD, altitude={"lower_m": 1e300})]},
        {
            "kind": "operation",
            "volumes": [dict(GOOD, geometry={"type": "Point", "coordinates": [1e308, 1e308]})],
        },
        {
            "kind": "operation",
            "volumes": [dict(GOOD, geometry={"type": "Point", "coordinates": [True, False]})],
        },
    ]
    for body in bodies:
        answer = cast["north"].post("/v1/declarations", body)
        assert 400 <= answer.status_code < 500, (body, answer.text)
        problem_of(answer)


def test_times_beyond_the_utc_range_are_a_400(cast: dict[str, Actor]) -> None:
    """Regression: a valid RFC 3339 time past year 9999 in UTC once answered 500."""
    answer = cast["north"].post(
        "/v1/declarations",
        with_volume(time={"start": "9999-12-31T23:00:00-02:00", "end": None}),
    )
    assert answer.status_code == 400, answer.text
    assert "volumes[0].time.start" in [e["field"] for e in problem_of(answer)["errors"]]


def test_a_revocation_by_another_process_takes_effect_at_once(
    cast: dict[str, Actor], service: Service
) -> None:
    """The token cache of one process must not outlive a revocation made by another."""
    from deconflict.service.deployment import Deployment
    from deconflict.service.parties import get_party, revoke_party
    from deconflict.storage.database import Database

    assert cast["south"].get("/v1/declarations").status_code == 200  # now cached
    other_db = Database(service.db_url)
    other = Deployment(other_db, service.deployment.key_file)
    try:
        with other.writing() as write:
            coordinator = get_party(write.conn, service.coordinator.id)
            revoke_party(write, cast["south"].id, coordinator)
    finally:
        other_db.dispose()
    assert cast["south"].get("/v1/declarations").status_code == 401


def test_a_policy_change_by_another_process_takes_effect_at_once(
    cast: dict[str, Actor], service: Service
) -> None:
    from deconflict.service.bootstrap import apply_policy
    from deconflict.service.deployment import Deployment
    from deconflict.service.parties import get_party
    from deconflict.storage.database import Database

    cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])
    text = cast["north"].get("/v1/policy").json()["toml"]
    other_db = Database(service.db_url)
    other = Deployment(other_db, service.deployment.key_file)
    try:
        with other.writing() as write:
            coordinator = get_party(write.conn, service.coordinator.id)
            apply_policy(
                write, text.replace("horizontal_m = 9260", "horizontal_m = 20000"), coordinator
            )
    finally:
        other_db.dispose()
    # ~14 km away: clear under the old policy, in conflict under the new one.
    assert cast["south"].declare("operation", [volume(point(36.15, 34.0))]).status_code == 409
