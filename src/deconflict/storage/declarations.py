"""The SQL of the declarations aggregate: current rows, versions, the changes the index
replays, lists and openings; and ``StoredDeclaration``, a row as the service reads it.

A declaration is one row of ``declarations`` (its current state, with ``change_seq``, the
global counter the conflict index replays) and one immutable row of
``declaration_versions`` per accepted version (with the salts of its record commitments and
the index of its record entry). The service reads and writes them only through these
functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.engine import Connection, RowMapping

from deconflict.geo.coords import readback, representative_position
from deconflict.storage.schema import declaration_versions, declarations, parties

# SQLite limits the number of bound parameters in one statement.
_IN_CHUNK = 500


@dataclass(frozen=True)
class StoredDeclaration:
    """API.md's Declaration: a ``declarations`` row with its JSON columns decoded.

    ``restricts`` is None for a declaration that is not a restriction. The API renders it
    field by field (``api/declaration_json.py``), and the read-back serialises these very
    fields before a write commits (``service/readback.py``)."""

    id: str
    kind: str
    owner: str
    version: str
    state: str
    volumes: list[dict[str, Any]]
    category: str
    metadata: Any
    late_notice: bool
    restricts: dict[str, Any] | None
    created_at: str
    updated_at: str
    # An operation's justification (API.md v1.1); the service answers it only to the owner
    # and the coordinator (``declaration_reads.shown_to``), None for everyone else.
    justification: str | None = None
    # The read-back of the first volume's position (``geo.coords.readback``: decimal, DMS,
    # MGRS), so a swapped latitude and longitude is seen. Computed here from ``volumes``, for
    # every way a declaration is built, so the answer still only shows fields of this object.
    position: dict[str, Any] | None = field(init=False)

    def __post_init__(self) -> None:
        # Frozen dataclass: a derived field is set through object.__setattr__.
        object.__setattr__(self, "position", position_of(self.volumes))

    @classmethod
    def of_row(
        cls, row: Mapping[Any, Any], *, volumes: list[dict[str, Any]] | None = None
    ) -> StoredDeclaration:
        """Decode a ``declarations`` row (``volumes``: its volumes' JSON, when the caller
        has decoded it already)."""
        restricts = None
        if row["kind"] == "restriction":
            restricts = json.loads(row["restricts"] or "{}")
        return cls(
            id=row["id"],
            kind=row["kind"],
            owner=row["owner"],
            version=row["version"],
            state=row["state"],
            volumes=json.loads(row["volumes"]) if volumes is None else volumes,
            category=row["category"],
            metadata=json.loads(row["metadata"]),
            late_notice=bool(row["late_notice"]),
            restricts=restricts,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            justification=row.get("justification"),
        )


def position_of(volumes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The read-back of the first volume's representative position; None without volumes."""
    if not volumes:
        return None
    return readback(*representative_position(volumes[0]["geometry"]))


# -- the current rows -------------------------------------------------------------------------


def declaration_changes(since_seq: int) -> Select[Any]:
    """The declaration rows changed after ``since_seq``, in order, joined with the owner's
    role: what the index sync reads, and so what a write must prove it can read."""
    return (
        select(declarations, parties.c.role.label("owner_role"))
        .join(parties, parties.c.id == declarations.c.owner)
        .where(declarations.c.change_seq > since_seq)
        .order_by(declarations.c.change_seq)
    )


def changed_rows(conn: Connection, since_seq: int) -> list[RowMapping]:
    """The rows of ``declaration_changes``, all at once: for the few one write changed."""
    return list(conn.execute(declaration_changes(since_seq)).mappings())


@contextmanager
def streamed_changes(
    conn: Connection, since_seq: int, batch: int
) -> Iterator[Iterator[RowMapping]]:
    """The rows of ``declaration_changes``, streamed ``batch`` at a time (a restart replays a
    million rows and more, which need not all sit in memory); the cursor is closed on
    leaving, also early (a server-side cursor on PostgreSQL)."""
    query = declaration_changes(since_seq).execution_options(stream_results=True, yield_per=batch)
    with conn.execute(query).mappings() as rows:
        yield iter(rows)


def current_row(conn: Connection, declaration_id: str) -> RowMapping | None:
    """A declaration's current row, joined with its owner's role."""
    return (
        conn.execute(
            select(declarations, parties.c.role.label("owner_role"))
            .join(parties, parties.c.id == declarations.c.owner)
            .where(declarations.c.id == declaration_id)
        )
        .mappings()
        .one_or_none()
    )


def ids_changed_since(conn: Connection, seq: int, before: int | None = None) -> set[str]:
    """The declarations changed after ``change_seq`` ``seq`` (and before ``before``)."""
    query = select(declarations.c.id).where(declarations.c.change_seq > seq)
    if before is not None:
        query = query.where(declarations.c.change_seq < before)
    return set(conn.execute(query).scalars())


def active_rows(conn: Connection, ids: Iterable[str]) -> list[RowMapping]:
    """The current rows of the active declarations among ``ids`` (in no order)."""
    wanted = list(ids)
    found: list[RowMapping] = []
    for offset in range(0, len(wanted), _IN_CHUNK):
        found.extend(
            conn.execute(
                select(declarations).where(
                    declarations.c.id.in_(wanted[offset : offset + _IN_CHUNK]),
                    declarations.c.state == "active",
                )
            ).mappings()
        )
    return found


def insert_current(conn: Connection, values: Mapping[str, Any]) -> None:
    """Store a new declaration's current row."""
    conn.execute(declarations.insert(), dict(values))  # parameters of one cached statement


def replace_current(conn: Connection, declaration_id: str, values: Mapping[str, Any]) -> None:
    """Overwrite a declaration's current row."""
    conn.execute(update(declarations).where(declarations.c.id == declaration_id).values(**values))


# -- versions ---------------------------------------------------------------------------------


def insert_version(conn: Connection, values: Mapping[str, Any]) -> RowMapping:
    """Store an immutable version row; returns it as the database gives it back, which is
    what its record entry commits to."""
    conn.execute(declaration_versions.insert(), dict(values))
    stored = version_row(conn, values["declaration_id"], values["version"])
    assert stored is not None  # just inserted, in this transaction
    return stored


def set_log_index(conn: Connection, declaration_id: str, version: str, index: int) -> None:
    """Note where a version's record entry is in the log."""
    conn.execute(
        update(declaration_versions)
        .where(
            declaration_versions.c.declaration_id == declaration_id,
            declaration_versions.c.version == version,
        )
        .values(log_index=index)
    )


def version_row(conn: Connection, declaration_id: str, version: str) -> RowMapping | None:
    """One version of a declaration, as stored."""
    return (
        conn.execute(
            select(declaration_versions).where(
                declaration_versions.c.declaration_id == declaration_id,
                declaration_versions.c.version == version,
            )
        )
        .mappings()
        .one_or_none()
    )


def version_logged_before(conn: Connection, declaration_id: str, log_index: int) -> str | None:
    """The version of this declaration logged last before ``log_index``, if any. By log
    order, not time: clocks of several processes may disagree, the log's order may not."""
    previous: str | None = conn.execute(
        select(declaration_versions.c.version)
        .where(
            declaration_versions.c.declaration_id == declaration_id,
            declaration_versions.c.log_index < log_index,
        )
        .order_by(declaration_versions.c.log_index.desc())
        .limit(1)
    ).scalar_one_or_none()
    return previous


def declaration_kind_and_owner(conn: Connection, declaration_id: str) -> tuple[str, str] | None:
    """``(kind, owner)`` of a declaration, to decide who sees its deliveries."""
    row = conn.execute(
        select(declarations.c.kind, declarations.c.owner).where(declarations.c.id == declaration_id)
    ).one_or_none()
    return None if row is None else (str(row.kind), str(row.owner))
