"""The write path parses each volume once: the answer of a write and the index after its
commit are made from what the write stored, not from its row read back. Both must be what a
reader of the row gets: GET answers the same bytes, and the running index holds what a
restart loads."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from deconflict.engine.index import ConflictIndex
from deconflict.engine.rule import Declared, Subject
from deconflict.policy import default_policy
from deconflict.service.deployment import Change, RecentVersions, subject_from_row
from deconflict.storage.declarations import current_row, declaration_changes
from support import Actor, Service, build, point, square, volume


def held(index: ConflictIndex) -> dict[str, Any]:
    """Everything the index holds of each declaration, times as the floats it compares."""
    contents: dict[str, Any] = {}
    for declared in index.intersecting(None, -math.inf, math.inf):
        assert declared.id is not None
        subject = index.get(declared.id)
        assert subject is not None
        contents[declared.id] = (
            subject.version,
            subject.kind,
            subject.owner,
            subject.owner_role,
            subject.category,
            subject.restricts,
            [
                (v.shape.geojson, v.buffer_m, v.lower_m, v.upper_m, v.start_s, v.end_s)
                for v in subject.volumes
            ],
        )
    return contents


def rebuilt(service: Service) -> ConflictIndex:
    """The index as a restart loads it, from the rows."""
    index = ConflictIndex(threads=1)
    with service.deployment.db.read() as conn:
        index.apply_rows(conn.execute(declaration_changes(0)).mappings())
    return index


def conflicts_near(index: ConflictIndex) -> list[dict[str, Any]]:
    """What an operation over the whole test area conflicts with (distances included)."""
    wide = volume(square(36.3, 33.3, half=0.6), lower_m=None, upper_m=None, hours=None)
    wide["time"] = {"start": "2026-01-01T00:00:00Z", "end": None}
    probe = Subject(None, "operation", "pty_probe", "operator", "", "", None, build([wide]))
    return [f.to_json() for f in index.conflicts_of(default_policy(), probe)]


def two_squares() -> dict[str, Any]:
    return {
        "type": "MultiPolygon",
        "coordinates": [square(36.0, 33.0)["coordinates"], square(36.2, 33.0)["coordinates"]],
    }


def one_square_multi() -> dict[str, Any]:
    return {"type": "MultiPolygon", "coordinates": [square(36.4, 33.0)["coordinates"]]}


def with_repeats() -> dict[str, Any]:
    """A line with consecutive duplicate positions (the parser and the encoder drop them)."""
    return {"type": "LineString", "coordinates": [[36.5, 33.1], [36.5, 33.1], [36.6, 33.2]]}


def precise(geometry: dict[str, Any]) -> dict[str, Any]:
    """A volume whose window has microseconds and an offset, and no end."""
    document = volume(geometry, buffer_m=12.5, lower_m=None, upper_m=None, hours=None)
    document["time"] = {"start": "2026-12-04T03:04:05.123456+02:00", "end": None}
    return document


GEOMETRIES = [
    pytest.param(point(36.3, 33.5), id="point"),
    pytest.param(square(36.3, 33.5), id="polygon"),
    pytest.param(two_squares(), id="multipolygon"),
    pytest.param(one_square_multi(), id="multipolygon of one polygon"),
    pytest.param(with_repeats(), id="line with repeated positions"),
]

METADATA = {"ref": "x", "nested": {"a": [1, 1.0, 0.1, 1e-7, 2**53 - 1, None, True]}, "é": "ü\u2028"}


def answered_as_stored(actor: Actor, answer: Any) -> dict[str, Any]:
    """The declaration a write answered; asserts GET answers the same JSON, number types
    and key order included."""
    declaration: dict[str, Any] = answer.json()["declaration"]
    got = actor.get(f"/v1/declarations/{declaration['id']}")
    assert got.status_code == 200, got.text
    assert json.dumps(got.json()["declaration"]) == json.dumps(declaration)
    return declaration


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_a_write_answers_and_indexes_what_a_reader_of_its_row_gets(
    cast: dict[str, Actor], service: Service, geometry: dict[str, Any]
) -> None:
    relief = cast["relief"]
    made = relief.declare("site", [precise(geometry), volume(point(36.0, 34.0))], metadata=METADATA)
    assert made.status_code == 201, made.text
    site = answered_as_stored(relief, made)
    assert held(service.deployment.index) == held(rebuilt(service))
    assert conflicts_near(service.deployment.index) == conflicts_near(rebuilt(service))

    moved = relief.put(
        f"/v1/declarations/{site['id']}",
        {"version": site["version"], "volumes": [precise(geometry)]},  # metadata kept
    )
    assert moved.status_code == 200, moved.text
    site = answered_as_stored(relief, moved)
    assert site["metadata"] == METADATA
    assert held(service.deployment.index) == held(rebuilt(service))

    gone = relief.delete(f"/v1/declarations/{site['id']}", params={"version": site["version"]})
    assert gone.status_code == 200, gone.text
    assert gone.json()["declaration"]["state"] == "withdrawn"
    assert site["id"] not in held(service.deployment.index)
    assert held(service.deployment.index) == held(rebuilt(service))


def test_restrictions_and_conflicts_after_a_write_are_those_of_a_restart(
    cast: dict[str, Actor], service: Service
) -> None:
    """The rule's view the index takes from a write (restricts, owner role, category)
    decides conflicts exactly as the one a restart reads from the row."""
    zone = cast["coordinator"].declare(
        "restriction",
        [volume(square(36.3, 33.5, half=0.2))],
        restricts={"roles": ["operator"], "allowed_categories": ["medevac"]},
    )
    assert zone.status_code == 201, zone.text
    answered_as_stored(cast["coordinator"], zone)
    cast["relief"].declare_ok("site", [volume(point(36.31, 33.51), buffer_m=500)])
    cast["north"].declare_ok("operation", [volume(square(36.3, 33.5))], category="strike")
    probe = cast["south"].declare_ok("operation", [volume(square(36.3, 33.5))], category="cargo")
    probe_id = probe["declaration"]["id"]
    running = service.deployment.index
    restarted = rebuilt(service)
    subject = running.get(probe_id)
    assert subject is not None
    policy = default_policy()
    assert [f.to_json() for f in running.conflicts_of(policy, subject)] == [
        f.to_json() for f in restarted.conflicts_of(policy, subject)
    ]
    assert held(running) == held(restarted)


def test_put_parsed_holds_what_put_documents_of_the_stored_documents_holds() -> None:
    """The index after a write (``put_parsed``: blocks encoded for the write's search) is
    the index a sync of its row makes (``put_documents``), down to every number."""
    documents = [precise(g.values[0]) for g in GEOMETRIES]
    volumes = build(documents)
    parsed, stored = ConflictIndex(threads=1), ConflictIndex(threads=1)
    declared = Declared("dcl_a", "site", "pty_a", "humanitarian", "v", "", None)
    parsed.conflicts_of(
        default_policy(), Subject(**{**vars_of(declared), "id": None}, volumes=volumes)
    )
    parsed.put_parsed(declared, volumes)
    stored.put_documents(declared, json.loads(json.dumps([v.to_json() for v in volumes])))
    for name in ("table", "rows", "codes"):
        assert np.array_equal(
            getattr(parsed._store, name), getattr(stored._store, name), equal_nan=True
        ), name
    assert held(parsed) == held(stored)


def vars_of(declared: Declared) -> dict[str, Any]:
    return {name: getattr(declared, name) for name in Declared.__slots__}


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_the_version_a_process_keeps_is_the_one_its_row_gives(
    cast: dict[str, Actor], service: Service, geometry: dict[str, Any]
) -> None:
    """An update starts from the previous version as this process parsed it when it wrote
    it: exactly what parsing the stored row gives, shapes, times and rule fields."""
    relief = cast["relief"]
    site = relief.declare_ok("site", [precise(geometry), volume(point(36.0, 34.0))])["declaration"]
    deployment = service.deployment
    kept = deployment.recent(site["id"], site["version"])
    assert kept is not None
    with deployment.db.read() as conn:
        row = current_row(conn, site["id"])
    assert row is not None
    parsed = subject_from_row(row)
    assert vars_of(kept) == vars_of(parsed)
    assert [v.to_json() for v in kept.volumes] == [v.to_json() for v in parsed.volumes]
    assert [(v.start_s, v.end_s, v.shape.kind, v.shape.vertex_count) for v in kept.volumes] == [
        (v.start_s, v.end_s, v.shape.kind, v.shape.vertex_count) for v in parsed.volumes
    ]
    assert deployment.recent(site["id"], "another version") is None
    gone = relief.delete(f"/v1/declarations/{site['id']}", params={"version": site["version"]})
    assert gone.status_code == 200, gone.text
    assert deployment.recent(site["id"], site["version"]) is None


def test_a_process_keeps_only_its_last_writes() -> None:
    """The versions kept are bounded by their size, the oldest dropped first."""
    recent = RecentVersions(limit=3 * 9)  # three one-point versions
    subjects = [
        Subject(
            f"dcl_{n}",
            "site",
            "pty_a",
            "humanitarian",
            "v",
            "",
            None,
            build([precise(point(1, n))]),
        )
        for n in range(4)
    ]
    for n, subject in enumerate(subjects):
        recent.note(Change(n + 1, subject, removed=False))
    assert recent.get("dcl_0", "v") is None
    assert [recent.get(f"dcl_{n}", "v") for n in (1, 2, 3)] == subjects[1:]
    recent.note(Change(5, subjects[2], removed=True))
    assert recent.get("dcl_2", "v") is None
