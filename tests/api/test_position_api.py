"""Read-back: every declaration answer shows its first volume's position as decimal, DMS and
MGRS (``position``), and ``GET /v1/coordinates`` reads a typed position the same way."""

from __future__ import annotations

from typing import Any

import pytest

from support import Actor, point, problem_of, square, volume

SANAA = {
    "lat": 15.35,
    "lon": 44.2,
    "decimal": "15.35000, 44.20000",
    "dms": "15°21'0.0\"N 44°12'0.0\"E",
    "mgrs": "38PMB1413397196",
}


def test_every_answer_reads_the_position_back(cast: dict[str, Actor]) -> None:
    relief = cast["relief"]
    made = relief.declare_ok("site", [volume(point(44.2, 15.35)), volume(point(10.0, 10.0))])
    assert made["declaration"]["position"] == SANAA  # the first volume's
    found = made["declaration"]
    got = relief.get(f"/v1/declarations/{found['id']}").json()["declaration"]
    assert got["position"] == SANAA
    listed = relief.get("/v1/declarations").json()["declarations"]
    assert [d["position"] for d in listed if d["id"] == found["id"]] == [SANAA]
    # Swapped on update: the read-back shows a place in Bosnia, which the person will see.
    body = {"version": found["version"], "volumes": [volume(point(15.35, 44.2))]}
    updated = relief.put(f"/v1/declarations/{found['id']}", body).json()["declaration"]
    assert updated["position"]["dms"] == "44°12'0.0\"N 15°21'0.0\"E"


def test_a_polygon_reads_back_a_point_inside_it(cast: dict[str, Actor]) -> None:
    made = cast["relief"].declare_ok("site", [volume(square(44.2, 15.35, half=0.1))])
    position = made["declaration"]["position"]
    assert abs(position["lat"] - 15.35) < 0.1 and abs(position["lon"] - 44.2) < 0.1
    assert position["mgrs"].startswith("38P")


def test_a_polygon_across_the_antimeridian_reads_back_its_first_vertex(
    cast: dict[str, Actor],
) -> None:
    ring = [[179.9, -16.0], [-179.9, -16.0], [-179.9, -16.2], [179.9, -16.2], [179.9, -16.0]]
    geometry = {"type": "Polygon", "coordinates": [ring]}
    position = cast["relief"].declare_ok("site", [volume(geometry)])["declaration"]["position"]
    assert (position["lat"], position["lon"]) == (-16.0, 179.9)


def test_near_a_pole_there_is_no_mgrs(cast: dict[str, Actor]) -> None:
    made = cast["relief"].declare_ok("site", [volume(point(10.0, 85.0))])
    assert made["declaration"]["position"]["mgrs"] is None


def read(actor: Actor, text: str) -> Any:
    return actor.get("/v1/coordinates", params={"text": text})


@pytest.mark.parametrize(
    "text",
    ["15.35, 44.2", "15°21'N 44°12'E", "N15 21 E44 12", "15d21m 44d12m", "38PMB1413397196"],
)
def test_coordinates_are_read_back(cast: dict[str, Actor], text: str) -> None:
    answer = read(cast["observer"], text)  # any party
    assert answer.status_code == 200, answer.text
    position = answer.json()["position"]
    assert abs(position["lat"] - 15.35) < 1e-4 and abs(position["lon"] - 44.2) < 1e-4
    assert position["mgrs"] == "38PMB1413397196"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "give the position"),
        ("somewhere", "not a position"),
        ("44.2E, 15.35E", "longitude hemisphere"),
        ("95, 10", "beyond 90"),
        ("38PMB141", "3 digits"),
        ("1" * 201, "at most 200"),
    ],
)
def test_bad_coordinates_name_the_text(cast: dict[str, Actor], text: str, says: str) -> None:
    answer = read(cast["relief"], text)
    assert answer.status_code == 400, answer.text
    problem = problem_of(answer)
    assert problem["code"] == "invalid_request"
    assert [e["field"] for e in problem["errors"]] == ["text"]
    assert says in problem["detail"]


def test_coordinates_need_no_text_parameter_to_answer_400(cast: dict[str, Actor]) -> None:
    assert problem_of(cast["relief"].get("/v1/coordinates"))["errors"][0]["field"] == "text"


def test_coordinates_need_authentication(cast: dict[str, Actor]) -> None:
    answer = cast["relief"].client.get("/v1/coordinates", params={"text": "15.35, 44.2"})
    assert answer.status_code == 401
