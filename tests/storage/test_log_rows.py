"""The SQL of the record, on SQLite and PostgreSQL: entries of both forms, nodes by key and
by range, heads by size, and declaration versions by their place in the log."""

from __future__ import annotations

from rows import empty_schema

from deconflict.storage import log


def entry(index: int, *, sealed: bool = False) -> dict[str, object]:
    row: dict[str, object] = {
        "idx": index,
        "leaf": f'{{"n":{index}}}',
        "leaf_hash": bytes([index]) * 32,
        "entry_type": "party.registered",
        "subject": f"s{index}",
        "at": "2026-12-01T06:00:00Z",
    }
    if sealed:
        row |= {"sealed": f'{{"sealed":{index}}}', "salt": f"salt{index}"}
    return row


def test_entries_of_both_forms_in_one_call(db_url: str) -> None:
    with empty_schema(db_url) as db, db.write() as conn:
        assert log.log_size(conn) == 0
        log.insert_entries(conn, [entry(0), entry(1, sealed=True), entry(2), entry(3, sealed=True)])
        assert log.log_size(conn) == 4
        assert log.entries(conn, 1, 3) == [
            {"index": 1, "leaf": '{"n":1}'},
            {"index": 2, "leaf": '{"n":2}'},
        ]
        assert log.seal_at(conn, 1) == ('{"sealed":1}', "salt1")
        assert log.seal_at(conn, 2) is None  # in clear
        assert log.seal_at(conn, 9) is None  # absent
        assert log.leaf_hash_at(conn, 3) == bytes([3]) * 32
        assert log.leaf_hash_at(conn, 4) is None
        assert log.index_of(conn, "party.registered", "s2") == 2
        about = log.entries_about(conn, "s3", ["party.registered", "party.revoked"])
        assert [(row.idx, row.entry_type) for row in about] == [(3, "party.registered")]
        assert log.entries_about(conn, "s3", ["party.revoked"]) == []
        batch = log.entry_rows_after(conn, None, 3)
        assert [row.idx for row in batch] == [0, 1, 2]
        assert [row.idx for row in log.entry_rows_after(conn, 2, 3)] == [3]


def test_nodes_by_key_and_by_range(db_url: str) -> None:
    with empty_schema(db_url) as db, db.write() as conn:
        nodes = [
            {"level": level, "idx": i, "hash": bytes([level, i]) * 16}
            for level in (0, 1)
            for i in range(4)
        ]
        log.insert_nodes(conn, nodes)
        assert log.node_count(conn) == 8
        assert log.node_hashes(conn, [(0, 1), (1, 3), (2, 0)]) == {
            (0, 1): bytes([0, 1]) * 16,
            (1, 3): bytes([1, 3]) * 16,
        }
        assert set(log.nodes_in_ranges(conn, [(0, 2, 3), (1, 0, 0)])) == {(0, 2), (0, 3), (1, 0)}


def test_heads_by_size(db_url: str) -> None:
    with empty_schema(db_url) as db, db.write() as conn:
        assert log.latest_head(conn) is None
        for size in (0, 3, 7):
            log.insert_head(
                conn, {"size": size, "root": f"r{size}", "timestamp": "t", "signature": "sig"}
            )
        latest = log.latest_head(conn)
        assert latest is not None and latest["size"] == 7
        head = log.head_at(conn, 3)
        assert head is not None and head["root"] == "r3"
        assert log.head_at(conn, 4) is None
        assert sorted(log.heads_between(conn, 1, 7)) == [3, 7]
        assert log.smallest_head_above(conn, 3) == 7
        assert log.smallest_head_above(conn, 7) is None
