"""Declaring through the HTTP API: conflicts, awareness keys, versions, visibility, roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from deconflict.storage import schema
from support import Actor, Service, point, problem_of, square, volume

# Damascus-like coordinates for a fictional theatre.
HOSPITAL = point(36.30, 33.51)


def test_operation_over_a_site_needs_the_sites_version_in_the_key(cast: dict[str, Actor]) -> None:
    site = cast["relief"].declare_ok("site", [volume(HOSPITAL, buffer_m=300)], category="hospital")
    site_ref = site["declaration"]

    answer = cast["north"].declare("operation", [volume(square(36.30, 33.51))], category="strike")

    assert answer.status_code == 409
    problem = problem_of(answer)
    assert problem["code"] == "missing_awareness"
    assert problem["missing"] == [
        {
            "id": site_ref["id"],
            "kind": "site",
            "owner": cast["relief"].id,
            "version": site_ref["version"],
        }
    ]

    # The key complete, the site is protected: a justification is asked for next (API.md v1.1).
    unjustified = cast["north"].declare(
        "operation", [volume(square(36.30, 33.51))], category="strike", key=[site_ref["version"]]
    )
    assert problem_of(unjustified)["code"] == "justification_required"
    accepted = cast["north"].declare(
        "operation",
        [volume(square(36.30, 33.51))],
        category="strike",
        key=[site_ref["version"]],
        justification="the only bridge; the clinic is told",
    )
    assert accepted.status_code == 201, accepted.text
    conflict = accepted.json()["conflicts"][0]
    assert conflict["declaration"]["id"] == site_ref["id"]
    assert conflict["reason"] == "separation"
    assert conflict["min_distance_m"] == 0
    assert accepted.json()["receipt"]["index"] < accepted.json()["receipt"]["tree_head"]["size"]


def test_two_operations_within_five_nautical_miles_conflict(cast: dict[str, Actor]) -> None:
    first = cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])
    # 0.08° of longitude at 34° N is about 7.4 km: inside 9,260 m.
    answer = cast["south"].declare("operation", [volume(point(36.08, 34.0))])
    assert answer.status_code == 409
    assert answer.json()["missing"][0]["id"] == first["declaration"]["id"]
    # 0.2° is about 18.5 km: clear.
    clear = cast["south"].declare("operation", [volume(point(36.2, 34.0))])
    assert clear.status_code == 201, clear.text
    assert clear.json()["conflicts"] == []


def test_vertical_separation_and_disjoint_times_clear_a_conflict(cast: dict[str, Actor]) -> None:
    cast["north"].declare_ok("operation", [volume(point(36.0, 34.0), lower_m=0, upper_m=3000)])
    above = cast["south"].declare(
        "operation", [volume(point(36.0, 34.0), lower_m=3301, upper_m=6000)]
    )
    assert above.status_code == 201, above.text
    later = cast["south"].declare("operation", [volume(point(36.01, 34.0), hours=2, start=None)])
    assert later.status_code == 409  # same time window as the first one


def test_same_owner_never_conflicts(cast: dict[str, Actor]) -> None:
    cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])
    again = cast["north"].declare("operation", [volume(point(36.0, 34.0))])
    assert again.status_code == 201
    assert again.json()["conflicts"] == []


def test_update_needs_the_current_version(cast: dict[str, Actor]) -> None:
    made = cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])["declaration"]
    moved = cast["north"].put(
        f"/v1/declarations/{made['id']}",
        {"version": made["version"], "volumes": [volume(point(36.5, 34.0))]},
    )
    assert moved.status_code == 200, moved.text
    new_version = moved.json()["declaration"]["version"]
    assert new_version != made["version"]

    stale = cast["north"].put(
        f"/v1/declarations/{made['id']}",
        {"version": made["version"], "volumes": [volume(point(36.6, 34.0))]},
    )
    assert stale.status_code == 409
    assert problem_of(stale)["code"] == "stale_version"


def test_only_the_owner_changes_or_withdraws(cast: dict[str, Actor]) -> None:
    made = cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])["declaration"]
    body = {"version": made["version"], "volumes": [volume(point(36.5, 34.0))]}
    assert (
        problem_of(cast["south"].put(f"/v1/declarations/{made['id']}", body))["code"] == "forbidden"
    )
    withdraw = cast["south"].delete(f"/v1/declarations/{made['id']}?version={made['version']}")
    assert withdraw.status_code == 403
    # Humanitarians cannot see operations at all: for them it does not exist.
    assert cast["relief"].put(f"/v1/declarations/{made['id']}", body).status_code == 404


def test_withdrawn_declarations_no_longer_conflict(cast: dict[str, Actor]) -> None:
    made = cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])["declaration"]
    gone = cast["north"].delete(f"/v1/declarations/{made['id']}?version={made['version']}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["declaration"]["state"] == "withdrawn"
    assert "receipt" in gone.json()
    answer = cast["south"].declare("operation", [volume(point(36.0, 34.0))])
    assert answer.status_code == 201
    assert answer.json()["conflicts"] == []
    listed = cast["north"].get("/v1/declarations").json()["declarations"]
    assert made["id"] not in [d["id"] for d in listed]


def test_roles_declare_only_their_kinds(cast: dict[str, Actor]) -> None:
    cases = [
        ("relief", "operation"),
        ("north", "site"),
        ("north", "restriction"),
        ("observer", "site"),
        ("coordinator", "operation"),
    ]
    for who, kind in cases:
        extra: dict[str, Any] = {"restricts": {}} if kind == "restriction" else {}
        answer = cast[who].declare(kind, [volume(point(36.0, 34.0))], **extra)
        assert answer.status_code == 403, (who, kind, answer.text)
        assert problem_of(answer)["code"] == "forbidden"


def test_operations_are_invisible_to_humanitarians_and_observers(cast: dict[str, Actor]) -> None:
    site = cast["relief"].declare_ok("site", [volume(HOSPITAL)])["declaration"]
    op = cast["north"].declare_ok("operation", [volume(square(36.30, 33.51))])["declaration"]
    for who in ("relief", "observer"):
        assert cast[who].get(f"/v1/declarations/{op['id']}").status_code == 404
        assert op["id"] not in [
            d["id"] for d in cast[who].get("/v1/declarations").json()["declarations"]
        ]
        assert cast[who].get(f"/v1/declarations/{site['id']}/conflicts").json()["conflicts"] == []
        assert cast[who].get(f"/v1/declarations/{op['id']}/conflicts").status_code == 404
    # The humanitarian's own writes never require the invisible operation's version.
    moved = cast["relief"].put(
        f"/v1/declarations/{site['id']}",
        {"version": site["version"], "volumes": [volume(point(36.301, 33.51))]},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["conflicts"] == []
    # Operators and the coordinator do see it, with its conflict.
    assert cast["south"].get(f"/v1/declarations/{op['id']}").status_code == 200
    seen = cast["coordinator"].get(f"/v1/declarations/{site['id']}/conflicts").json()["conflicts"]
    assert [c["declaration"]["id"] for c in seen] == [op["id"]]


def test_restriction_by_party_with_allowed_categories(cast: dict[str, Actor]) -> None:
    area = square(37.0, 35.0, half=0.5)
    restriction = cast["coordinator"].declare_ok(
        "restriction",
        [volume(area, lower_m=None, upper_m=None, hours=None)],
        category="designated area",
        restricts={"parties": [cast["north"].id], "allowed_categories": ["non-combat"]},
    )["declaration"]
    assert restriction["restricts"]["parties"] == [cast["north"].id]

    inside = [volume(point(37.1, 35.1))]
    refused = cast["north"].declare("operation", inside, category="strike")
    assert refused.status_code == 409
    assert refused.json()["missing"][0]["id"] == restriction["id"]
    accepted = cast["north"].declare(
        "operation", inside, category="strike", key=[restriction["version"]]
    )
    assert accepted.json()["conflicts"][0]["reason"] == "restriction"

    allowed = cast["north"].declare("operation", [volume(point(37.2, 35.2))], category="non-combat")
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["conflicts"] == []
    other_party = cast["south"].declare("operation", [volume(point(37.3, 34.7))], category="strike")
    assert other_party.status_code == 201, other_party.text


def test_restriction_by_role_restricts_every_operator(cast: dict[str, Actor]) -> None:
    cast["coordinator"].declare_ok(
        "restriction",
        [volume(square(38.0, 35.0, half=0.2), lower_m=None, upper_m=None)],
        restricts={"roles": ["operator"]},
    )
    for who in ("north", "south"):
        answer = cast[who].declare("operation", [volume(point(38.0, 35.0))])
        assert answer.status_code == 409, who


def test_sites_never_conflict_with_sites(cast: dict[str, Actor]) -> None:
    cast["relief"].declare_ok("site", [volume(HOSPITAL)])
    answer = cast["water"].declare("site", [volume(HOSPITAL)])
    assert answer.status_code == 201
    assert answer.json()["conflicts"] == []


def test_check_writes_nothing(cast: dict[str, Actor], service: Service) -> None:
    site = cast["relief"].declare_ok("site", [volume(HOSPITAL, buffer_m=600)])["declaration"]
    size_before = service.coordinator.get("/v1/log/head").json()["size"]
    checked = cast["north"].post(
        "/v1/conflicts/check", {"kind": "operation", "volumes": [volume(point(36.30, 33.515))]}
    )
    assert checked.status_code == 200, checked.text
    found = checked.json()["conflicts"]
    assert [c["declaration"]["id"] for c in found] == [site["id"]]
    assert 550 < found[0]["min_distance_m"] < 560  # 0.005° of latitude, buffers not counted
    assert service.coordinator.get("/v1/log/head").json()["size"] == size_before


def test_list_filters_by_bbox_time_and_kind(cast: dict[str, Actor]) -> None:
    a = cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))])["declaration"]
    b = cast["relief"].declare_ok("movement", [volume(point(40.0, 36.0))])["declaration"]

    def ids(query: str) -> set[str]:
        answer = cast["north"].get(f"/v1/declarations{query}")
        assert answer.status_code == 200, answer.text
        return {d["id"] for d in answer.json()["declarations"]}

    assert ids("") == {a["id"], b["id"]}
    assert ids("?bbox=36,33,37,34") == {a["id"]}
    assert ids("?kind=movement") == {b["id"]}
    start = a["volumes"][0]["time"]["start"]
    assert ids("?start=2030-01-01T00:00:00Z&end=2030-01-02T00:00:00Z") == set()
    assert ids(f"?start={start}&end={start}") == {a["id"], b["id"]}


def test_antimeridian_bbox(cast: dict[str, Actor]) -> None:
    fiji = cast["relief"].declare_ok("site", [volume(point(179.9, -17.0))])["declaration"]
    samoa = cast["relief"].declare_ok("site", [volume(point(-179.9, -17.0))])["declaration"]
    answer = cast["north"].get("/v1/declarations?bbox=179,-18,-179,-16")
    assert answer.status_code == 200, answer.text
    assert {d["id"] for d in answer.json()["declarations"]} == {fiji["id"], samoa["id"]}


def test_late_notice_is_flagged(cast: dict[str, Actor], service: Service) -> None:
    soon = service.clock.now.replace(hour=service.clock.now.hour + 2)
    answer = cast["north"].declare("operation", [volume(point(36.0, 34.0), start=soon)])
    assert answer.status_code == 201
    assert answer.json()["declaration"]["late_notice"] is True
    early = cast["north"].declare("operation", [volume(point(39.0, 34.0))])
    assert early.json()["declaration"]["late_notice"] is False
    site = cast["relief"].declare("site", [volume(point(36.0, 33.0), start=soon)])
    assert site.json()["declaration"]["late_notice"] is False  # sites need no notice


def test_parties_are_listed_and_registered_by_the_coordinator_only(
    cast: dict[str, Actor], service: Service
) -> None:
    listed = cast["observer"].get("/v1/parties").json()["parties"]
    assert {p["name"] for p in listed} >= {"Northern Air Force", "Relief Without Borders"}
    assert all(set(p) == {"id", "name", "role"} for p in listed)
    refused = cast["north"].post("/v1/parties", {"name": "Rogue", "role": "coordinator"})
    assert refused.status_code == 403


def test_tokens_are_stored_only_as_hashes(cast: dict[str, Actor], service: Service) -> None:
    stored = []
    with service.deployment.db.read() as conn:
        for table in schema.metadata.sorted_tables:
            stored.extend(str(tuple(row)) for row in conn.execute(select(table)))
    everything = "\n".join(stored).encode()
    database_file = service.tmp / "deconflict.db"
    if database_file.exists():  # SQLite: the raw bytes too, write-ahead log included
        everything += database_file.read_bytes()
        wal = service.tmp / "deconflict.db-wal"
        everything += wal.read_bytes() if wal.exists() else b""
    assert cast["north"].id.encode() in everything  # the scan does see the parties
    for actor in cast.values():
        assert actor.token.encode() not in everything
