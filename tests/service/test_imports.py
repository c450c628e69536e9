"""Importing rows (``service.imports.import_rows``): each row through exactly the rules of
``POST /v1/declarations``, re-imports unchanged or updated by ``external_id``, a dry run
that writes nothing, and rows whose outcomes are independent of each other, across chunks."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from deconflict.importing import ImportRow, RowError
from deconflict.policy import default_policy_text
from deconflict.service import declarations
from deconflict.service.imports import ImportResult, import_rows
from deconflict.service.parties import Party
from deconflict.storage import imports as import_storage
from deconflict.storage.meta import read_counters
from deconflict.storage.schema import declarations as declaration_table
from deconflict.storage.schema import imported_rows, log_entries, notifications
from support import Actor, Service, point, square, volume


def party(actor: Actor) -> Party:
    return Party(actor.id, actor.name, actor.role)


def site_row(
    row: int,
    lon: float,
    lat: float,
    *,
    external_id: str | None = None,
    key: list[str] | None = None,
    kind: str = "site",
    name: str | None = None,
    buffer_m: float = 50,
) -> ImportRow:
    """A row as ``deconflict.importing`` reads it: a ``POST /v1/declarations`` body."""
    metadata: dict[str, Any] = {"name": name or f"Site {row}"}
    if external_id is not None:
        metadata["external_id"] = external_id
    document: dict[str, Any] = {
        "kind": kind,
        "volumes": [volume(point(lon, lat), buffer_m=buffer_m, upper_m=50, hours=None)],
        "category": "hospital",
        "metadata": metadata,
    }
    if key is not None:
        document["key"] = key
    return ImportRow(row, document, external_id)


def sites(count: int, *, first: int = 1, prefix: str = "S") -> list[ImportRow]:
    return [
        site_row(n, 36.0 + n * 0.01, 33.0, external_id=f"{prefix}{n}")
        for n in range(first, first + count)
    ]


def written(service: Service) -> dict[str, int]:
    """What a write leaves behind: rows, record entries, notifications, the change counter."""
    with service.deployment.db.read() as conn:

        def count(table: Any) -> int:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

        return {
            "declarations": count(declaration_table),
            "imported": count(imported_rows),
            "log": count(log_entries),
            "notifications": count(notifications),
            "change_seq": read_counters(conn).change_seq,
        }


def statuses(result: ImportResult) -> list[tuple[int, str]]:
    return [(r.row, r.status) for r in result.results]


def test_created_then_unchanged_then_updated(service: Service, cast: dict[str, Actor]) -> None:
    relief = party(cast["relief"])
    rows = sites(3)
    first = import_rows(service.deployment, relief, rows, dry_run=False)
    assert statuses(first) == [(1, "created"), (2, "created"), (3, "created")]
    assert all(not r.errors for r in first.results)
    ids = [r.declaration.id for r in first.results if r.declaration]
    fetched = cast["relief"].get(f"/v1/declarations/{ids[1]}").json()["declaration"]
    assert fetched["metadata"] == {"name": "Site 2", "external_id": "S2"}
    # Sites are broadcast to every operator, as a single POST's are.
    assert cast["north"].get("/v1/inbox").json()["notifications"]

    before = written(service)
    again = import_rows(service.deployment, relief, rows, dry_run=False)
    assert statuses(again) == [(1, "unchanged"), (2, "unchanged"), (3, "unchanged")]
    assert [r.declaration.id for r in again.results if r.declaration] == ids
    assert written(service) == before  # nothing at all

    moved = [rows[0], site_row(2, 36.5, 33.5, external_id="S2"), rows[2]]
    changed = import_rows(service.deployment, relief, moved, dry_run=False)
    assert statuses(changed) == [(1, "unchanged"), (2, "updated"), (3, "unchanged")]
    updated = changed.results[1].declaration
    assert updated is not None and updated.id == ids[1]
    assert updated.version != fetched["version"]
    assert updated.volumes[0]["geometry"]["coordinates"] == [36.5, 33.5]
    after = written(service)
    assert after["declarations"] == before["declarations"]  # an update, not a new one
    assert after["change_seq"] == before["change_seq"] + 1


def test_a_key_alone_is_no_change(service: Service, cast: dict[str, Actor]) -> None:
    relief = party(cast["relief"])
    import_rows(service.deployment, relief, sites(1), dry_run=False)
    row = sites(1)[0]
    assert row.document is not None
    keyed = ImportRow(1, {**row.document, "key": ["a-version-seen"]}, "S1")
    assert statuses(import_rows(service.deployment, relief, [keyed], dry_run=False)) == [
        (1, "unchanged")
    ]


def test_a_dry_run_writes_nothing_and_answers_the_same(
    service: Service, cast: dict[str, Actor]
) -> None:
    relief = party(cast["relief"])
    import_rows(service.deployment, relief, sites(2), dry_run=False)  # S1, S2 exist
    cast["north"].declare_ok("operation", [volume(square(36.5, 33.5, 0.05))], category="survey")
    rows = [
        *sites(2),  # unchanged
        site_row(3, 36.5, 33.5, external_id="S3"),  # new, under the (hidden) operation
        site_row(4, 36.1, 33.1, external_id="S1"),  # a repeat of S1 in the file
        site_row(5, 36.2, 33.2, external_id="S5", buffer_m=-1),  # a bad value
        ImportRow(6, None, "S6", [RowError("lat", "not a latitude")]),  # the reader's error
    ]
    before = written(service)
    dry = import_rows(service.deployment, relief, rows, dry_run=True)
    assert written(service) == before
    with service.deployment.db.read() as conn:
        assert set(import_storage.imported(conn, relief.id, ["S3", "S5"])) == set()
    real = import_rows(service.deployment, relief, rows, dry_run=False)
    assert (
        statuses(dry)
        == statuses(real)
        == [
            (1, "unchanged"),
            (2, "unchanged"),
            (3, "created"),
            (4, "error"),
            (5, "error"),
            (6, "error"),
        ]
    )
    for preview, done in zip(dry.results, real.results, strict=True):
        assert preview.errors == done.errors
        assert preview.conflicts == done.conflicts
        if preview.status == "created":
            assert preview.declaration is not None and done.declaration is not None
            assert preview.declaration.volumes == done.declaration.volumes
            assert preview.declaration.metadata == done.declaration.metadata
    assert dry.results[3].errors[0].field == "external_id"
    assert "row 1" in dry.results[3].errors[0].message
    assert dry.results[4].errors[0].field == "buffer_m"
    assert dry.results[5].errors == [RowError("lat", "not a latitude")]
    # The operation is hidden from the humanitarian: no conflict listed, no key asked.
    assert real.results[2].conflicts == []


def test_a_bad_row_among_good_ones(service: Service, cast: dict[str, Actor]) -> None:
    relief = party(cast["relief"])
    rows = [
        site_row(1, 36.0, 33.0),
        site_row(2, 36.1, 33.0, kind="operation"),  # a humanitarian declares no operation
        site_row(3, 36.2, 33.0),
        site_row(4, 236.0, 33.0),  # no longitude
        site_row(5, 36.3, 33.0),
    ]
    result = import_rows(service.deployment, relief, rows, dry_run=False)
    assert statuses(result) == [
        (1, "created"),
        (2, "error"),
        (3, "created"),
        (4, "error"),
        (5, "created"),
    ]
    assert [e.field for e in result.results[1].errors] == ["kind"]
    assert [e.field for e in result.results[3].errors] == ["geometry"]
    assert written(service)["declarations"] == 3


@pytest.fixture
def operations_seen_by_all(service: Service) -> None:
    text = default_policy_text().replace(
        'operation = ["operator", "coordinator"]', 'operation = ["*"]'
    )
    answer = service.coordinator.client.put(
        "/v1/policy", content=text, headers={**service.coordinator.headers}
    )
    assert answer.status_code == 200, answer.text


def test_awareness_through_the_key_column(
    service: Service, cast: dict[str, Actor], operations_seen_by_all: None
) -> None:
    """A humanitarian that may see operations must key the one its site falls under,
    exactly as a POST must."""
    operation = cast["north"].declare_ok(
        "operation", [volume(square(36.5, 33.5, 0.05))], category="survey"
    )["declaration"]
    relief = party(cast["relief"])
    under = site_row(1, 36.5, 33.5, external_id="U1")
    posted = cast["relief"].post("/v1/declarations", under.document)
    assert posted.status_code == 409
    refused = import_rows(service.deployment, relief, [under, *sites(1, first=2)], dry_run=False)
    assert statuses(refused) == [(1, "error"), (2, "created")]
    row = refused.results[0]
    assert [e.field for e in row.errors] == ["key"]
    assert row.missing == posted.json()["missing"]
    assert row.conflicts == posted.json()["conflicts"]
    assert operation["id"] in row.errors[0].message
    keyed = site_row(1, 36.5, 33.5, external_id="U1", key=[operation["version"]])
    accepted = import_rows(service.deployment, relief, [keyed], dry_run=False)
    assert statuses(accepted) == [(1, "created")]
    conflicts = accepted.results[0].conflicts
    assert conflicts is not None and [c["declaration"]["id"] for c in conflicts] == [
        operation["id"]
    ]


def test_rows_across_chunks_stand_alone(service: Service, cast: dict[str, Actor]) -> None:
    """Chunks of three: a refused row in the middle of a chunk, one at its edge, and a row
    made stale in the race before the lock leave every other row of their chunks standing."""
    relief = party(cast["relief"])
    first = import_rows(service.deployment, relief, sites(1, first=4), dry_run=False)
    s4 = first.results[0].declaration
    assert s4 is not None
    rows = [
        site_row(1, 36.01, 33.0, external_id="S1"),
        site_row(2, 36.02, 33.0, external_id="S2", kind="restriction"),  # refused: kind
        site_row(3, 36.03, 33.0, external_id="S3", buffer_m=-5),  # refused: chunk's edge
        site_row(4, 36.44, 33.4, external_id="S4"),  # an update, made stale below
        site_row(5, 36.05, 33.0, external_id="S5"),
        site_row(6, 36.06, 33.0, external_id="S6"),
        site_row(7, 36.07, 33.0, external_id="S7"),
    ]

    def race() -> None:
        # Another request of the same party changes S4 between its draft and the lock.
        declarations._between_hook.clear()
        moved = cast["relief"].put(
            f"/v1/declarations/{s4.id}",
            {"version": s4.version, "volumes": [volume(point(36.9, 33.9), hours=None)]},
        )
        assert moved.status_code == 200, moved.text

    declarations._between_hook.append(race)
    try:
        result = import_rows(service.deployment, relief, rows, dry_run=False, chunk_rows=3)
    finally:
        declarations._between_hook.clear()
    assert statuses(result) == [
        (1, "created"),
        (2, "error"),
        (3, "error"),
        (4, "error"),
        (5, "created"),
        (6, "created"),
        (7, "created"),
    ]
    assert [e.field for e in result.results[3].errors] == ["external_id"]
    with service.deployment.db.read() as conn:
        known = import_storage.imported(conn, relief.id, [f"S{n}" for n in range(1, 8)])
    assert set(known) == {"S1", "S4", "S5", "S6", "S7"}


def test_a_chunk_that_fails_as_a_whole_is_done_row_by_row(
    service: Service, cast: dict[str, Actor]
) -> None:
    """A fault of the service inside a chunk (here: another import stored the same new
    external_id meanwhile, which the table refuses) loses only the row it fell on."""
    relief = party(cast["relief"])
    rows = sites(4)

    def race() -> None:
        declarations._between_hook.clear()
        with service.deployment.db.write() as conn:
            import_storage.note_imported(
                conn,
                owner=relief.id,
                external_id="S3",
                declaration_id="dcl_elsewhere",
                digest="0" * 64,
                at="2026-12-01T06:00:00Z",
                known=False,
            )

    declarations._between_hook.append(race)
    try:
        result = import_rows(service.deployment, relief, rows, dry_run=False)
    finally:
        declarations._between_hook.clear()
    assert statuses(result) == [(1, "created"), (2, "created"), (3, "error"), (4, "created")]
    assert [e.field for e in result.results[2].errors] == ["row"]
    assert written(service)["declarations"] == 3


def test_only_importing_roles_import(service: Service, cast: dict[str, Actor]) -> None:
    from deconflict.errors import Forbidden

    for name in ("north", "observer"):
        with pytest.raises(Forbidden):
            import_rows(service.deployment, party(cast[name]), sites(1), dry_run=True)
