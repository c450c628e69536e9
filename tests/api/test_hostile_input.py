"""Issue 11: one hostile request must never break a guarantee. Each reproduction of the review
is pinned here: it is refused with a 400 naming the field, nothing of it is committed, and the
deployment afterwards still restarts, verifies and holds a complete conflict index."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from starlette.testclient import TestClient

from deconflict.api.app import create_app
from deconflict.api.declaration_json import declaration_json
from deconflict.cli import main
from deconflict.clock import format_time, format_timestamp, repair_stored_time
from deconflict.engine.index import ConflictIndex
from deconflict.engine.rows import stored_documents
from deconflict.record.journal import Journal
from deconflict.requests import AltitudeIn, DeclarationIn, TimeIn, VolumeIn
from deconflict.service.declarations import _store_version, create_declaration
from deconflict.service.deployment import Deployment, Write
from deconflict.service.parties import authenticate
from deconflict.storage.database import Database
from deconflict.storage.meta import next_change_seq
from deconflict.storage.schema import declarations, log_entries, subscriptions
from deconflict.volumes import volumes_from_json
from support import Actor, Service, point, problem_of, volume

SPOT = point(1.0, 1.0)
SOON = volume(SPOT)  # three days after the test clock's now


def timed(start: Any, end: Any = None) -> dict[str, Any]:
    return {"geometry": SPOT, "time": {"start": start, "end": end}}


def refused(answer: Any, field: str) -> dict[str, Any]:
    """The answer is a 400 naming ``field``; returns the problem."""
    assert answer.status_code == 400, answer.text
    problem = problem_of(answer)
    assert field in [e["field"] for e in problem["errors"]], problem
    return problem


def counts(service: Service) -> tuple[int, int]:
    """Declarations stored and entries in the record."""
    with service.deployment.db.read() as conn:
        stored = conn.execute(select(func.count()).select_from(declarations)).scalar_one()
        logged = conn.execute(select(func.count()).select_from(log_entries)).scalar_one()
    return int(stored), int(logged)


def index_contents(index: ConflictIndex) -> dict[str, Any]:
    """What an index holds: every declaration's version and volumes."""
    held: dict[str, Any] = {}
    for declared in index.intersecting(None, -math.inf, math.inf):
        assert declared.id is not None
        subject = index.get(declared.id)
        assert subject is not None
        held[declared.id] = (subject.version, [v.to_json() for v in subject.volumes])
    return held


def assert_deployment_whole(service: Service) -> None:
    """A new deployment on the same database starts (its index loads), `deconflict verify`
    passes, and the running index equals the one rebuilt from the database."""
    db = Database(service.db_url)
    try:
        restarted = Deployment(db, service.tmp / "log.key", clock=service.clock)
        with TestClient(create_app(restarted, webhooks=False)) as client:
            assert client.get("/v1/log/head").status_code == 200
        with service.deployment.reading():
            pass  # the running index, brought up to date as every request does
        assert index_contents(service.deployment.index) == index_contents(restarted.index)
        assert service.deployment.index.applied_seq == restarted.index.applied_seq
    finally:
        db.dispose()
    verified = CliRunner().invoke(main, ["verify", "--db", service.db_url])
    assert verified.exit_code == 0, verified.output


# -- times: one accepted range, 1900-01-01T00:00:00Z to 9999-12-31T23:59:59Z ----------------

OUT_OF_RANGE = [
    ("year 999 (the review's)", "0999-01-01T00:00:00Z"),
    ("a second before 1900", "1899-12-31T23:59:59Z"),
    ("before year 1 in UTC", "0001-01-01T00:00:00+23:59"),
    ("past year 9999 in UTC", "9999-12-31T23:00:00-02:00"),
    ("a fraction past the last second", "9999-12-31T23:59:59.5Z"),
]


@pytest.mark.parametrize("moment", [c[1] for c in OUT_OF_RANGE], ids=[c[0] for c in OUT_OF_RANGE])
def test_a_time_outside_the_range_is_refused_and_nothing_is_committed(
    cast: dict[str, Actor], service: Service, moment: str
) -> None:
    before = counts(service)
    answer = cast["relief"].declare("site", [timed(moment)])
    problem = refused(answer, "volumes[0].time.start")
    assert "1900-01-01T00:00:00Z and 9999-12-31T23:59:59Z" in problem["detail"]
    assert counts(service) == before
    assert cast["relief"].get("/v1/declarations").json()["declarations"] == []
    assert_deployment_whole(service)


def test_the_ends_of_the_range_round_trip_through_every_part(
    cast: dict[str, Actor], service: Service
) -> None:
    window = ("1900-01-01T00:00:00Z", "9999-12-31T23:59:59Z")
    site = cast["relief"].declare_ok("site", [timed(*window)])["declaration"]
    assert site["volumes"][0]["time"] == {"start": window[0], "end": window[1]}
    # The engine's float seconds, back to text in a conflict answer.
    answer = cast["north"].declare("operation", [volume(SPOT, start_h=1)])
    assert answer.status_code == 409, answer.text
    [conflict] = answer.json()["conflicts"]
    assert conflict["declaration"]["id"] == site["id"]
    listed = (
        cast["north"]
        .get("/v1/declarations", params={"start": window[0], "end": window[1]})
        .json()["declarations"]
    )
    assert [d["id"] for d in listed] == [site["id"]]
    assert_deployment_whole(service)


def test_a_subscription_outside_the_range_is_refused_and_writes_go_on(
    cast: dict[str, Actor], service: Service
) -> None:
    answer = cast["observer"].post(
        "/v1/subscriptions", {"volumes": [timed("0999-01-01T00:00:00Z")]}
    )
    refused(answer, "volumes[0].time.start")
    made = cast["observer"].post("/v1/subscriptions", {"volumes": [timed("1900-01-01T00:00:00Z")]})
    assert made.status_code == 201, made.text
    site = cast["relief"].declare_ok("site", [volume(SPOT)])["declaration"]
    moved = cast["relief"].put(
        f"/v1/declarations/{site['id']}",
        {"version": site["version"], "volumes": [volume(SPOT, start_h=1)]},
    )
    assert moved.status_code == 200, moved.text
    version = moved.json()["declaration"]["version"]
    gone = cast["relief"].delete(f"/v1/declarations/{site['id']}", params={"version": version})
    assert gone.status_code == 200, gone.text
    # The subscriber was told of all three.
    changes = [n["change"] for n in cast["observer"].get("/v1/inbox").json()["notifications"]]
    assert changes == ["created", "updated", "withdrawn"]
    assert_deployment_whole(service)


NOT_RFC3339 = [
    ("Unix seconds", 1800000000),
    ("Unix seconds as a float", 1800000000.5),
    ("Unix seconds as a string", "1800000000"),
    ("no seconds", "2026-12-05T10:00Z"),
    ("a date alone", "2026-12-05"),
]


@pytest.mark.parametrize("moment", [c[1] for c in NOT_RFC3339], ids=[c[0] for c in NOT_RFC3339])
def test_a_time_must_be_an_rfc_3339_string(cast: dict[str, Actor], moment: Any) -> None:
    problem = refused(cast["north"].declare("operation", [timed(moment)]), "volumes[0].time.start")
    assert "RFC 3339" in problem["detail"]


def test_times_are_written_with_four_digit_years() -> None:
    assert format_time(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00Z"
    assert (
        format_time(datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=UTC)) == "2026-01-01T00:00:00.000005Z"
    )


def test_rows_written_with_an_unpadded_year_still_load() -> None:
    """deconflict 0.1 stored year 999 as ``999-01-01T00:00:00Z``: those rows are in existing
    records, and the engine and the rule must read them as what they meant."""
    assert repair_stored_time("999-01-01T00:00:00Z") == "0999-01-01T00:00:00Z"
    stored = json.dumps([timed("999-01-01T00:00:00Z", "999-01-02T00:00:00Z")])
    [document] = stored_documents(stored)
    assert document["time"] == {"start": "0999-01-01T00:00:00Z", "end": "0999-01-02T00:00:00Z"}
    [rebuilt] = volumes_from_json(json.loads(stored))
    assert rebuilt.start == datetime(999, 1, 1, tzinfo=UTC)


def test_a_declaration_an_older_version_accepted_before_1900_still_serves(
    cast: dict[str, Actor], service: Service
) -> None:
    """Stored rows keep the range they were accepted under: a restart loads them, they can be
    changed and withdrawn, and `verify` passes."""
    early = TimeIn.model_construct(start=datetime(1000, 1, 1, tzinfo=UTC), end=None)
    item = VolumeIn.model_construct(geometry=SPOT, buffer_m=0.0, altitude=AltitudeIn(), time=early)
    body = DeclarationIn.model_construct(
        kind="site", volumes=[item], key=[], category="", metadata={}, restricts=None
    )
    relief = authenticate(service.deployment, cast["relief"].token)
    made = declaration_json(create_declaration(service.deployment, relief, body).declaration)
    assert made["volumes"][0]["time"]["start"] == "1000-01-01T00:00:00Z"
    assert_deployment_whole(service)
    moved = cast["relief"].put(
        f"/v1/declarations/{made['id']}",
        {"version": made["version"], "volumes": [volume(SPOT)]},
    )
    assert moved.status_code == 200, moved.text


# -- metadata and bodies --------------------------------------------------------------------


def nested(levels: int) -> dict[str, Any]:
    """An object ``levels`` deep: ``{"a": {"a": ... {}}}``."""
    document: dict[str, Any] = {}
    for _ in range(levels - 1):
        document = {"a": document}
    return document


BAD_METADATA = [
    ("NaN", '{"x": NaN}', "body"),
    ("-Infinity", '{"x": -Infinity}', "body"),
    ("1e400 (infinite)", '{"x": 1e400}', "metadata.x"),
    ("2^53 + 1", '{"x": 9007199254740993}', "metadata.x"),
    ("-(2^53 + 1)", '{"x": [-9007199254740993]}', "metadata.x[0]"),
    ("a lone surrogate", '{"x": "\\ud800"}', "metadata.x"),
    ("a lone surrogate in a key", '{"\\udc00": 1}', "metadata.\\udc00"),
    ("U+0000", '{"x": "a\\u0000b"}', "metadata.x"),
    ("33 levels", json.dumps(nested(33)), "metadata" + ".a" * 32),
    ("350 levels (the review's)", json.dumps(nested(350)), "metadata" + ".a" * 63),
]


def raw_declaration(metadata: str) -> bytes:
    volumes = json.dumps([SOON])
    return f'{{"kind": "operation", "volumes": {volumes}, "metadata": {metadata}}}'.encode()


@pytest.mark.parametrize(
    ("metadata", "field"), [c[1:] for c in BAD_METADATA], ids=[c[0] for c in BAD_METADATA]
)
def test_metadata_no_reader_could_take_back_is_refused(
    cast: dict[str, Actor], service: Service, metadata: str, field: str
) -> None:
    north = cast["north"]
    before = counts(service)
    answer = north.client.post(
        "/v1/declarations",
        content=raw_declaration(metadata),
        headers={**north.headers, "Content-Type": "application/json"},
    )
    refused(answer, field)
    assert counts(service) == before
    assert north.get("/v1/declarations").status_code == 200


def test_metadata_within_the_limits_round_trips(cast: dict[str, Actor], service: Service) -> None:
    metadata = {"deep": nested(31), "big": 9007199254740991, "small": -9007199254740991,
                "text": "\U0001f681 ok", "real": 1e300}  # fmt: skip
    made = cast["north"].declare_ok("operation", [SOON], metadata=metadata)["declaration"]
    assert made["metadata"] == metadata
    got = cast["north"].get(f"/v1/declarations/{made['id']}")
    assert got.status_code == 200
    assert got.json()["declaration"]["metadata"] == metadata
    assert cast["north"].get("/v1/declarations").status_code == 200
    assert_deployment_whole(service)


def test_metadata_an_older_version_stored_too_deep_still_serves(
    cast: dict[str, Actor], service: Service
) -> None:
    """0.1 accepted metadata 256-490 levels deep; its declarations must still answer, to
    their owner's GET, to every list, and to an update that keeps the metadata."""
    made = cast["relief"].declare_ok("site", [SOON])["declaration"]
    legacy = nested(300)
    with service.deployment.db.write() as conn:
        conn.execute(
            declarations.update()
            .where(declarations.c.id == made["id"])
            .values(metadata=json.dumps(legacy))
        )
    got = cast["relief"].get(f"/v1/declarations/{made['id']}")
    assert got.status_code == 200, got.text
    assert got.json()["declaration"]["metadata"] == legacy
    listed = cast["north"].get("/v1/declarations")
    assert listed.status_code == 200, listed.text
    assert [d["metadata"] for d in listed.json()["declarations"]] == [legacy]
    moved = cast["relief"].put(
        f"/v1/declarations/{made['id']}", {"version": made["version"], "volumes": [SOON]}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["declaration"]["metadata"] == legacy


ENCODINGS = [
    ("UTF-16", "utf-16", "UTF-16"),
    ("UTF-16-LE without a BOM", "utf-16-le", "UTF-16-LE"),
    ("UTF-32", "utf-32", "UTF-32"),
    ("UTF-8 with a BOM", "utf-8-sig", "byte order mark"),
]


@pytest.mark.parametrize(
    ("codec", "said"), [c[1:] for c in ENCODINGS], ids=[c[0] for c in ENCODINGS]
)
def test_a_body_must_be_utf_8(
    cast: dict[str, Actor], service: Service, codec: str, said: str
) -> None:
    north = cast["north"]
    before = counts(service)
    body = json.dumps({"kind": "operation", "volumes": [SOON]}).encode(codec)
    answer = north.client.post(
        "/v1/declarations",
        content=body,
        headers={**north.headers, "Content-Type": "application/json"},
    )
    problem = refused(answer, "body")
    assert "UTF-8" in problem["detail"] and said in problem["detail"]
    assert counts(service) == before


def test_bodies_read_by_the_service_itself_are_held_to_the_same_rules(
    cast: dict[str, Actor],
) -> None:
    inbox = cast["north"]
    acked = inbox.client.post(
        "/v1/notifications/ntf_none/ack",
        content=b'{"comment": "\\ud800"}',
        headers={**inbox.headers, "Content-Type": "application/json"},
    )
    refused(acked, "comment")


# -- query parameters -------------------------------------------------------------------------

QUERIES = [
    ("inbox after 2^63", "/v1/inbox?after=9223372036854775808", "after"),
    (
        "log entries end 2^63",
        "/v1/log/entries?start=9223372036854775807&end=9223372036854775808",
        "end",
    ),
    ("log entries start 2^63", "/v1/log/entries?start=9223372036854775808&end=0", "start"),
    ("proof index 2^63", "/v1/log/proof/inclusion?index=9223372036854775808&size=1", "index"),
    ("declarations before year 1", "/v1/declarations?start=0001-01-01T00:00:00%2B23:59", "start"),
    ("declarations end past 9999", "/v1/declarations?end=9999-12-31T23:00:00-02:00", "end"),
    ("declarations Unix time", "/v1/declarations?start=1800000000", "start"),
    ("stream after 2^63", "/v1/inbox/stream?after=9223372036854775808", "after"),
    ("stream after 1_000", "/v1/inbox/stream?after=1_000", "after"),
]


@pytest.mark.parametrize(("url", "field"), [c[1:] for c in QUERIES], ids=[c[0] for c in QUERIES])
def test_a_query_parameter_out_of_range_is_a_400_naming_it(
    cast: dict[str, Actor], url: str, field: str
) -> None:
    refused(cast["north"].get(url), field)


def test_the_last_log_index_is_an_empty_page(cast: dict[str, Actor]) -> None:
    answer = cast["north"].get("/v1/log/entries", params={"start": 2**63 - 1, "end": 2**63 - 1})
    assert answer.status_code == 200 and answer.json() == {"entries": []}


@pytest.mark.parametrize("resume", ["9223372036854775808", "9" * 5000, "-1", "seven"])
def test_the_event_stream_refuses_a_last_event_id_out_of_range(
    cast: dict[str, Actor], resume: str
) -> None:
    north = cast["north"]
    answer = north.client.get(
        "/v1/inbox/stream", headers={**north.headers, "Last-Event-ID": resume}
    )
    refused(answer, "Last-Event-ID")


# -- the class: nothing unreadable commits; a sync never skips --------------------------------


def test_a_write_that_could_not_be_read_back_is_refused_and_not_committed(
    cast: dict[str, Actor], service: Service
) -> None:
    """Should any write path ever store what the service cannot read back (here a row
    written by hand inside a write transaction, bypassing every check), the transaction's
    own read-back refuses it before the commit, naming the field."""
    site = cast["relief"].declare_ok("site", [volume(SPOT)])["declaration"]
    with service.deployment.db.read() as conn:
        row = dict(
            conn.execute(select(declarations).where(declarations.c.id == site["id"]))
            .mappings()
            .one()
        )
    before = counts(service)
    with pytest.raises(Exception) as caught, service.deployment.writing() as write:
        write.conn.execute(
            declarations.insert().values(
                **{
                    **row,
                    "id": "dcl_unreadable",
                    "volumes": json.dumps([{"geometry": {"type": "Point"}}]),
                    "change_seq": next_change_seq(write.conn),
                }
            )
        )
    assert getattr(caught.value, "status", None) == 400
    assert caught.value.errors[0]["field"].startswith("volumes")  # type: ignore[attr-defined]
    assert counts(service) == before
    assert cast["north"].get("/v1/declarations").status_code == 200
    assert_deployment_whole(service)


def _insert_copy(service: Service, row: dict[str, Any], new_id: str, volumes: str) -> int:
    """A declaration row as another process (or an older version) might have committed it,
    bypassing every check; returns its change_seq."""
    with service.deployment.db.write() as conn:
        seq = next_change_seq(conn)
        conn.execute(
            declarations.insert().values(
                **{**row, "id": new_id, "volumes": volumes, "change_seq": seq}
            )
        )
    return seq


def test_a_row_the_index_cannot_take_fails_every_request_until_it_can(
    cast: dict[str, Actor], service: Service
) -> None:
    """The review saw a worker skip an unreadable row and answer `conflicts: []` from the
    rest. Now the sync stops before it, says so, and is retried by every request; no answer
    rests on an index that skipped a change."""
    site = cast["relief"].declare_ok("site", [volume(SPOT)])["declaration"]
    with service.deployment.db.read() as conn:
        row = dict(
            conn.execute(select(declarations).where(declarations.c.id == site["id"]))
            .mappings()
            .one()
        )
    applied = service.deployment.index.applied_seq
    bad_seq = _insert_copy(service, row, "dcl_unreadable", "not json")
    _insert_copy(service, row, "dcl_after_it", row["volumes"])
    client = TestClient(service.client.app, raise_server_exceptions=False)
    headers = cast["north"].headers
    for _ in range(2):  # retried, and failing loudly, each time
        answer = client.post(
            "/v1/conflicts/check", json={"kind": "operation", "volumes": [SOON]}, headers=headers
        )
        assert answer.status_code == 500
        assert service.deployment.index.applied_seq == applied
        assert service.deployment.index.get("dcl_after_it") is None
    with service.deployment.db.write() as conn:
        conn.execute(
            declarations.update()
            .where(declarations.c.id == "dcl_unreadable")
            .values(volumes=row["volumes"])
        )
    answer = client.post(
        "/v1/conflicts/check", json={"kind": "operation", "volumes": [SOON]}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    found = {c["declaration"]["id"] for c in answer.json()["conflicts"]}
    assert found == {site["id"], "dcl_unreadable", "dcl_after_it"}
    assert service.deployment.index.applied_seq > bad_seq


def test_rows_an_older_version_wrote_with_an_unpadded_year_load_and_match(
    cast: dict[str, Actor], service: Service
) -> None:
    """A deployment that deconflict 0.1 poisoned (a site and a subscription stored with the
    year ``999``) serves again: the index takes the site, and writes matching the
    subscription are accepted instead of failing."""
    site = cast["relief"].declare_ok("site", [volume(SPOT)])["declaration"]
    legacy = json.dumps([timed("999-01-01T00:00:00Z")])
    with service.deployment.db.read() as conn:
        row = dict(
            conn.execute(select(declarations).where(declarations.c.id == site["id"]))
            .mappings()
            .one()
        )
    _insert_copy(service, row, "dcl_legacy", legacy)
    with service.deployment.db.write() as conn:
        conn.execute(
            subscriptions.insert().values(
                id="sub_legacy",
                party=cast["observer"].id,
                volumes=legacy,
                kinds="[]",
                salt="00",
                created_at="2026-11-01T00:00:00.000000Z",
            )
        )
    db = Database(service.db_url)
    try:
        restarted = Deployment(db, service.tmp / "log.key", clock=service.clock)
        with TestClient(create_app(restarted, webhooks=False)) as client:
            held = restarted.index.get("dcl_legacy")
            assert held is not None
            assert held.volumes[0].start == datetime(999, 1, 1, tzinfo=UTC)
            made = client.post(
                "/v1/declarations",
                json={"kind": "site", "volumes": [volume(SPOT)]},
                headers=cast["relief"].headers,
            )
            assert made.status_code == 201, made.text
    finally:
        db.dispose()
    told = cast["observer"].get("/v1/inbox").json()["notifications"]
    assert any(n["reason"] == "subscription" for n in told)


def _commit_unreadable_site(service: Service, owner: Actor) -> str:
    """A site committed with its record entry and a signed head, as if no read-back had run:
    logged correctly (the record verifies), but with a time the conflict index cannot read.
    Returns its id."""
    party = authenticate(service.deployment, owner.token)
    now = service.clock()
    with service.deployment.db.write() as conn:
        write = Write(conn, now, Journal(conn, service.deployment.key, format_timestamp(now)))
        row = {
            "id": "dcl_unreadable_logged",
            "kind": "site",
            "owner": party.id,
            "version": "0" * 16,
            "state": "active",
            "category": "",
            "volumes": json.dumps([timed("soon")]),
            "metadata": "{}",
            "restricts": None,
            "late_notice": False,
            "created_at": write.at,
            "updated_at": write.at,
            "change_seq": next_change_seq(conn),
        }
        conn.execute(declarations.insert().values(**row))
        _store_version(
            write,
            declaration_id=row["id"],
            change="created",
            actor=party,
            row=row,
            previous_version=None,
        )
        write.journal.head()
    return str(row["id"])


def test_verify_refuses_what_serve_could_not_start_on(
    cast: dict[str, Actor], service: Service
) -> None:
    """`serve` starts on every database `verify` accepts: a row the index cannot load, even
    one correctly logged, fails both, and `verify` names it."""
    cast["relief"].declare_ok("site", [volume(SPOT)])
    bad = _commit_unreadable_site(service, cast["relief"])
    verified = CliRunner().invoke(main, ["verify", "--db", service.db_url])
    assert verified.exit_code == 1
    assert bad in verified.output and "conflict index" in verified.output
    db = Database(service.db_url)
    try:
        restarted = Deployment(db, service.tmp / "log.key", clock=service.clock)
        with (
            pytest.raises(ValueError, match="soon"),
            TestClient(create_app(restarted, webhooks=False)),
        ):
            pass
    finally:
        db.dispose()
