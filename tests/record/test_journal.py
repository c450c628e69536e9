"""``Journal.record``: a row as stored, logged as the entry its builder makes of it, under the
subject ``verify`` finds the row by; both backends."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from deconflict.record import entries, log_store, merkle, signing
from deconflict.record.journal import Journal
from deconflict.storage import parties, schema
from deconflict.storage.database import Database

AT = "2026-12-01T06:00:00Z"


def test_a_recorded_row_is_the_entry_verify_rebuilds(db_url: str, tmp_path: Path) -> None:
    key = signing.generate_key(tmp_path / "key.pem")
    db = Database(db_url)
    schema.metadata.create_all(db.engine)
    try:
        with db.write() as conn:
            journal = Journal(conn, key, AT)
            row = parties.insert(
                conn,
                {"id": "pty_1", "name": "One", "role": "coordinator", "token_hash": "h"}
                | {"created_at": AT},
            )
            index = journal.record(entries.party_registered_entry, row)
            other = journal.record(entries.party_registered_entry, row, subject="pty_named")
            receipt = journal.receipt(other)
            logged = conn.execute(
                select(schema.log_entries.c.entry_type, schema.log_entries.c.subject).order_by(
                    schema.log_entries.c.idx
                )
            ).all()
            [stored] = log_store.entries(conn, index, index + 1)
            rebuilt = entries.leaf_for(conn, "party.registered", "pty_1")
        assert (index, other) == (0, 1)
        assert [tuple(item) for item in logged] == [
            ("party.registered", "pty_1"),
            ("party.registered", "pty_named"),
        ]
        # A party's entry is logged in clear: the leaf is the entry, as verify rebuilds it.
        assert json.loads(stored["leaf"]) == rebuilt == entries.party_registered_entry(row)
        assert receipt["index"] == 1 and receipt["tree_head"]["size"] == 2
        assert receipt["leaf_hash"] == merkle.leaf_hash(stored_leaf(db, 1)).hex()
    finally:
        db.dispose()


def stored_leaf(db: Database, index: int) -> bytes:
    with db.read() as conn:
        [entry] = log_store.entries(conn, index, index + 1)
    return str(entry["leaf"]).encode("utf-8")
