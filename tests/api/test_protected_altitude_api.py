"""Altitude never hides an operation over a protected declaration (issue 13, API.md v1.1).

A hospital declared at 0-50 m and a strike planned 6,000-12,000 m above it, with a 2 km
buffer: ``POST /v1/conflicts/check`` answers the conflict under the default policy
(``[protection] altitude = "ignored"``), and nothing once the policy says
``altitude = "separated"``; with only sites protected, a convoy is separated by altitude again.
"""

from __future__ import annotations

from typing import Any

import pytest

from support import Actor, offset, point, volume

HOSPITAL = (36.30, 33.51)
NEAR_HOSPITAL = offset(HOSPITAL, 45.0, 1_500.0)  # inside the strike's 2 km buffer
ROAD = [[36.20, 33.40], [36.40, 33.40]]
OVER_THE_ROAD = (36.30, 33.41)  # about 1.1 km north of it


def strike(where: tuple[float, float]) -> dict[str, Any]:
    return {
        "kind": "operation",
        "volumes": [
            {
                **volume(point(*where), buffer_m=2_000),
                "altitude": {"lower_m": 6_000, "upper_m": 12_000},
            }
        ],
    }


def ground(geometry: dict[str, Any], lower_m: float | None, upper_m: float) -> dict[str, Any]:
    return {**volume(geometry), "altitude": {"lower_m": lower_m, "upper_m": upper_m}}


def checked_ids(actor: Actor, body: dict[str, Any]) -> list[str]:
    answer = actor.post("/v1/conflicts/check", body)
    assert answer.status_code == 200, answer.text
    return [c["declaration"]["id"] for c in answer.json()["conflicts"]]


def set_protection(coordinator: Actor, table: str) -> None:
    text = coordinator.get("/v1/policy").json()["toml"]
    head, _, rest = text.partition("[protection]")
    after = rest.index("\n[")  # the next table
    answer = coordinator.client.put(
        "/v1/policy",
        content=f"{head}[protection]\n{table}\n{rest[after:]}".encode(),
        headers={**coordinator.headers, "Content-Type": "text/plain"},
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def protected(cast: dict[str, Actor]) -> dict[str, str]:
    """A hospital at 0-50 m and a convoy on the ground (unbounded below, up to 10 m)."""
    site = cast["relief"].declare_ok("site", [ground(point(*HOSPITAL), 0, 50)])
    road = {"type": "LineString", "coordinates": ROAD}
    convoy = cast["water"].declare_ok("movement", [ground(road, None, 10)])
    return {"site": site["declaration"]["id"], "movement": convoy["declaration"]["id"]}


def test_a_strike_high_above_a_hospital_conflicts_with_it(
    cast: dict[str, Actor], protected: dict[str, str]
) -> None:
    answer = cast["north"].post("/v1/conflicts/check", strike(NEAR_HOSPITAL))
    assert answer.status_code == 200, answer.text
    (found,) = answer.json()["conflicts"]
    assert found["declaration"]["id"] == protected["site"]
    assert found["declaration"]["kind"] == "site"
    assert found["reason"] == "separation"
    assert 1_450 < found["min_distance_m"] < 1_550  # buffers not counted
    assert checked_ids(cast["south"], strike(OVER_THE_ROAD)) == [protected["movement"]]


def test_altitude_separated_hides_it_again(
    cast: dict[str, Actor], protected: dict[str, str]
) -> None:
    set_protection(cast["coordinator"], 'altitude = "separated"')
    assert checked_ids(cast["north"], strike(NEAR_HOSPITAL)) == []
    assert checked_ids(cast["north"], strike(OVER_THE_ROAD)) == []
    # Bands that meet still conflict, as for any pair.
    low = strike(NEAR_HOSPITAL)
    low["volumes"][0]["altitude"] = {"lower_m": 50, "upper_m": 12_000}
    assert checked_ids(cast["north"], low) == [protected["site"]]


def test_only_the_protected_kinds_ignore_altitude(
    cast: dict[str, Actor], protected: dict[str, str]
) -> None:
    set_protection(cast["coordinator"], 'kinds = ["site"]')
    assert checked_ids(cast["north"], strike(NEAR_HOSPITAL)) == [protected["site"]]
    assert checked_ids(cast["north"], strike(OVER_THE_ROAD)) == []


def test_operations_are_still_separated_by_altitude(cast: dict[str, Actor]) -> None:
    # Two operations 6 km apart in altitude never conflict, whatever the protection.
    cast["south"].declare_ok("operation", [ground(point(*HOSPITAL), 0, 50)])
    assert checked_ids(cast["north"], strike(NEAR_HOSPITAL)) == []
