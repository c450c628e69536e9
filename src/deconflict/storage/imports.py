"""The SQL of imports: which declaration each of a party's ``external_id``s became, and the
digest of the content it was last imported with (``service/imports.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from deconflict.storage.schema import imported_rows

# SQLite limits the number of bound parameters in one statement.
_IN_CHUNK = 500


@dataclass(frozen=True)
class Imported:
    """An ``external_id`` imported before: its declaration and the content's digest."""

    declaration_id: str
    digest: str


def imported(conn: Connection, owner: str, external_ids: Iterable[str]) -> dict[str, Imported]:
    """What ``owner`` imported before under any of ``external_ids``, by external id."""
    wanted = sorted(set(external_ids))
    found: dict[str, Imported] = {}
    for offset in range(0, len(wanted), _IN_CHUNK):
        rows = conn.execute(
            select(imported_rows).where(
                imported_rows.c.owner == owner,
                imported_rows.c.external_id.in_(wanted[offset : offset + _IN_CHUNK]),
            )
        ).mappings()
        for row in rows:
            found[row["external_id"]] = Imported(row["declaration_id"], row["digest"])
    return found


def note_imported(
    conn: Connection,
    *,
    owner: str,
    external_id: str,
    declaration_id: str,
    digest: str,
    at: str,
    known: bool,
) -> None:
    """Remember what ``external_id`` became (``known``: it was imported before, and this
    is its new content)."""
    if known:
        conn.execute(
            update(imported_rows)
            .where(imported_rows.c.owner == owner, imported_rows.c.external_id == external_id)
            .values(declaration_id=declaration_id, digest=digest, imported_at=at)
        )
    else:
        conn.execute(
            imported_rows.insert().values(
                owner=owner,
                external_id=external_id,
                declaration_id=declaration_id,
                digest=digest,
                imported_at=at,
            )
        )
