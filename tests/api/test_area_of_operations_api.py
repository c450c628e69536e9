"""The policy's area of operations: declarations (create, update, check) with a position
outside it are refused, 400 ``invalid_geometry``, saying where the position fell."""

from __future__ import annotations

from typing import Any

import pytest

from support import Actor, point, problem_of, square, volume

# Yemen, roughly: lon 42.5 to 53.5, lat 12.5 to 19.
AREA = (
    "\n[area_of_operations]\n"
    'name = "Yemen"\n'
    'geometry.type = "Polygon"\n'
    "geometry.coordinates = [[[42.5, 12.5], [53.5, 12.5], [53.5, 19.0], [42.5, 19.0], "
    "[42.5, 12.5]]]\n"
)
INSIDE = point(44.2, 15.35)  # Sana'a (lon, lat)
SWAPPED = point(15.35, 44.2)  # the same numbers the other way round: in Bosnia


def put_policy(actor: Actor, text: str) -> Any:
    return actor.client.put(
        "/v1/policy", content=text.encode(), headers={**actor.headers, "Content-Type": "text/plain"}
    )


@pytest.fixture
def area(cast: dict[str, Actor]) -> dict[str, Actor]:
    text = cast["north"].get("/v1/policy").json()["toml"] + AREA
    answer = put_policy(cast["coordinator"], text)
    assert answer.status_code == 200, answer.text
    return cast


def refusal(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    problem = problem_of(answer)
    assert problem["code"] == "invalid_geometry"
    return problem


def test_the_policy_shows_its_area(area: dict[str, Actor]) -> None:
    shown = area["relief"].get("/v1/policy").json()["policy"]["area_of_operations"]
    assert shown["name"] == "Yemen"
    assert shown["geometry"]["type"] == "Polygon"
    assert shown["geometry"]["coordinates"][0][0] == [42.5, 12.5]


def test_no_area_by_default(cast: dict[str, Actor]) -> None:
    assert cast["relief"].get("/v1/policy").json()["policy"]["area_of_operations"] is None
    # Anywhere then: the middle of the Pacific is accepted.
    assert cast["relief"].declare("site", [volume(point(-150.0, 0.0))]).status_code == 201


def test_inside_is_accepted(area: dict[str, Actor]) -> None:
    area["relief"].declare_ok("site", [volume(INSIDE)])
    area["relief"].declare_ok("site", [volume(square(44.2, 15.35, half=0.2))])


def test_a_swapped_point_is_refused_and_said_to_be_swapped(area: dict[str, Actor]) -> None:
    problem = refusal(area["relief"].declare("site", [volume(INSIDE), volume(SWAPPED)]))
    assert problem["errors"][0]["field"] == "volumes[1].geometry"
    detail = problem["detail"]
    assert detail.startswith("the point lat 44.2, lon 15.35 is ")
    assert "km outside the area of operations (Yemen)" in detail
    assert detail.endswith("latitude and longitude may be swapped")


def test_far_outside_says_how_far_without_a_swap_hint(area: dict[str, Actor]) -> None:
    detail = refusal(area["relief"].declare("site", [volume(point(2.35, 48.85))]))["detail"]
    assert detail.startswith("the point lat 48.85, lon 2.35 is ")
    assert "km outside the area of operations (Yemen)" in detail
    assert "swapped" not in detail  # lat 2.35, lon 48.85 is in the sea off Somalia


def test_a_polygon_partly_outside_is_refused(area: dict[str, Actor]) -> None:
    # From 52.8 to 53.8 east: its eastern vertices are 32 km beyond the area.
    problem = refusal(area["relief"].declare("site", [volume(square(53.3, 15.0, half=0.5))]))
    assert problem["errors"][0]["field"] == "volumes[0].geometry"
    assert problem["detail"].startswith("the position lat 14.5, lon 53.8 is 32 km outside")


def test_a_vertex_on_the_edge_is_inside(area: dict[str, Actor]) -> None:
    area["relief"].declare_ok("site", [volume(point(53.5, 15.0))])


def test_the_conflict_check_refuses_outside_too(area: dict[str, Actor]) -> None:
    answer = area["north"].post(
        "/v1/conflicts/check", {"kind": "operation", "volumes": [volume(SWAPPED)]}
    )
    assert refusal(answer)["errors"][0]["field"] == "volumes[0].geometry"


def test_an_update_outside_is_refused_and_changes_nothing(area: dict[str, Actor]) -> None:
    made = area["relief"].declare_ok("site", [volume(INSIDE)])["declaration"]
    body = {"version": made["version"], "volumes": [volume(SWAPPED)]}
    refusal(area["relief"].put(f"/v1/declarations/{made['id']}", body))
    kept = area["relief"].get(f"/v1/declarations/{made['id']}").json()
    assert kept["declaration"]["version"] == made["version"]


@pytest.mark.parametrize(
    ("table", "field"),
    [
        pytest.param(
            'name = "X"\ngeometry = { type = "Point", coordinates = [36.0, 36.0] }',
            "area_of_operations.geometry",
            id="a-point",
        ),
        pytest.param(
            'name = "X"\ngeometry.type = "Polygon"\n'
            "geometry.coordinates = [[[35, 35], [37, 37], [37, 35], [35, 37], [35, 35]]]",
            "area_of_operations.geometry.coordinates[0]",
            id="bow-tie",
        ),
        pytest.param(
            'name = "X"\ngeometry.type = "Polygon"\n'
            "geometry.coordinates = [[[35, 95], [37, 35], [37, 36], [35, 95]]]",
            "area_of_operations.geometry.coordinates[0][0]",
            id="latitude-95",
        ),
        pytest.param(
            'geometry = { type = "Polygon", coordinates = [] }',
            "area_of_operations.name",
            id="no-name",
        ),
        pytest.param('name = "X"\ncolour = "red"', "area_of_operations.colour", id="unknown-key"),
    ],
)
def test_a_bad_area_is_refused_naming_the_field(
    cast: dict[str, Actor], table: str, field: str
) -> None:
    before = cast["north"].get("/v1/policy").json()
    text = before["toml"] + f"\n[area_of_operations]\n{table}\n"
    answer = put_policy(cast["coordinator"], text)
    assert answer.status_code == 400, answer.text
    assert field in [e["field"] for e in problem_of(answer)["errors"]]
    assert cast["north"].get("/v1/policy").json() == before


def test_the_commented_example_of_the_default_policy_applies(cast: dict[str, Actor]) -> None:
    text = cast["north"].get("/v1/policy").json()["toml"]
    head, _, example = text.partition("# [area_of_operations]")
    uncommented = "[area_of_operations]" + example.replace("\n# ", "\n")
    answer = put_policy(cast["coordinator"], head + uncommented)
    assert answer.status_code == 200, answer.text
    assert answer.json()["policy"]["area_of_operations"]["name"] == "Yemen"
