"""The record on a real SQLite file: appends, roots, proofs, heads, and what they cost."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, insert, select
from sqlalchemy.engine import Connection, Engine

from deconflict.errors import InvalidRequest
from deconflict.record import log_store, merkle, signing
from deconflict.storage import log, schema

# --- an independent reference, from RFC 6962 §2.1 with hashlib only ---------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def k_of(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return sha256(b"\x00" + leaves[0])
    k = k_of(len(leaves))
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = k_of(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def proof(m: int, leaves: list[bytes]) -> list[bytes]:
    def subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
        if m == len(leaves):
            return [] if b else [mth(leaves)]
        k = k_of(len(leaves))
        if m <= k:
            return [*subproof(m, leaves[:k], b), mth(leaves[k:])]
        return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]

    return subproof(m, leaves, True)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'record.db'}")
    schema.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def key(tmp_path: Path) -> Any:
    return signing.generate_key(tmp_path / "log-key.pem")


# A type the log holds in clear (the sealed form has a test of its own below).
CLEAR = "policy.changed"


def entry(i: int) -> dict[str, Any]:
    return {
        "type": CLEAR,
        "at": "2016-12-14T05:00:00Z",
        "actor": "pty_a",
        "n": i,
        "é": [1.0],
    }


def append(conn: Connection, i: int) -> int:
    return log_store.append_logged(
        conn, entry(i), entry_type=CLEAR, subject=f"s{i}", at="2016-12-14T05:00:00Z"
    )[0]


def leaf_text(i: int) -> bytes:
    # The canonical JSON, spelt out here rather than computed by the module under test.
    return (
        '{"actor":"pty_a","at":"2016-12-14T05:00:00Z","n":'
        + str(i)
        + ',"type":"policy.changed","é":[1]}'
    ).encode()


@pytest.fixture
def log_of_70(engine: Engine) -> Engine:
    with engine.begin() as conn:
        for i in range(70):
            assert append(conn, i) == i
    return engine


class StatementCounter:
    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.count += 1


# --- appending -------------------------------------------------------------------------------


def test_append_stores_the_canonical_leaf_its_hash_and_columns(log_of_70: Engine) -> None:
    with log_of_70.connect() as conn:
        row = conn.execute(select(schema.log_entries).where(schema.log_entries.c.idx == 3)).one()
        assert row.leaf.encode() == leaf_text(3)
        assert bytes(row.leaf_hash) == sha256(b"\x00" + leaf_text(3))
        assert (row.entry_type, row.subject, row.at) == (CLEAR, "s3", "2016-12-14T05:00:00Z")
        assert (row.sealed, row.salt) == (None, None)
        assert log_store.log_size(conn) == 70


def test_append_stores_exactly_the_complete_subtrees(log_of_70: Engine) -> None:
    with log_of_70.connect() as conn:
        keys = {(r.level, r.idx) for r in conn.execute(select(schema.log_nodes))}
    expected = {(level, idx) for level in range(7) for idx in range(70 >> level)}
    assert keys == expected


def test_append_refuses_an_entry_of_another_type(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError):
        log_store.append_logged(conn, entry(0), entry_type="party.registered", subject="x", at="t")[
            0
        ]


def test_a_rolled_back_append_leaves_no_trace(log_of_70: Engine) -> None:
    with log_of_70.connect() as conn:
        with conn.begin() as transaction:
            append(conn, 70)
            transaction.rollback()
        assert log_store.log_size(conn) == 70
        assert (
            conn.execute(select(func.count()).select_from(schema.log_nodes)).scalar_one()
            == 70 * 2 - 3
        )


def test_an_append_costs_a_fixed_number_of_statements(log_of_70: Engine) -> None:
    counter = StatementCounter(log_of_70)
    with log_of_70.begin() as conn:
        counter.count = 0
        append(conn, 70)  # 0b1000110: a left child, no sibling to read
        assert counter.count == 3  # the size, the node (one executemany), the entry
        counter.count = 0
        append(conn, 71)  # 0b1000111: completes 3 nodes above the leaf
        assert counter.count == 4  # the size, its 3 siblings (one query), the nodes, the entry


# --- roots and proofs against the reference --------------------------------------------------


def test_an_entry_not_every_party_sees_is_stored_sealed(engine: Engine) -> None:
    """The leaf is {"type": "sealed", "at", "commitment"}; the entry and the salt of its
    commitment are kept beside it, and open it."""
    sealed = {**entry(0), "type": "notification.delivered"}
    with engine.begin() as conn:
        index = log_store.append_logged(
            conn, sealed, entry_type="notification.delivered", subject="ntf_1", at=sealed["at"]
        )[0]
        row = conn.execute(
            select(schema.log_entries).where(schema.log_entries.c.idx == index)
        ).one()
    leaf = json.loads(row.leaf)
    assert set(leaf) == {"type", "at", "commitment"}
    assert (leaf["type"], leaf["at"]) == ("sealed", sealed["at"])
    assert "pty_a" not in row.leaf and "notification" not in row.leaf
    assert row.sealed.encode() == leaf_text(0).replace(b"policy.changed", b"notification.delivered")
    # The commitment is SHA-256(salt || canonical entry), spelt out with hashlib.
    assert leaf["commitment"] == sha256(bytes.fromhex(row.salt) + row.sealed.encode()).hex()
    assert bytes(row.leaf_hash) == sha256(b"\x00" + row.leaf.encode())
    with engine.begin() as conn:  # a second sealing of the same entry: another salt
        again = log_store.append_logged(
            conn, sealed, entry_type="notification.delivered", subject="ntf_2", at=sealed["at"]
        )[0]
        other = conn.execute(
            select(schema.log_entries.c.leaf).where(schema.log_entries.c.idx == again)
        ).scalar_one()
    assert json.loads(other)["commitment"] != leaf["commitment"]


def test_appending_many_at_once_stores_what_appending_one_by_one_does(
    log_of_70: Engine, tmp_path: Path
) -> None:
    """A change's many entries go in through one store, a few statements in all; the table
    then holds exactly the leaves and nodes of 70 single appends (and the reference root)."""
    other = create_engine(f"sqlite:///{tmp_path / 'at-once.db'}")
    schema.metadata.create_all(other)
    counter = StatementCounter(other)
    with other.begin() as conn:
        store = log_store.DatabaseNodeStore(conn)
        log_store.append_all(store, [(entry(i), CLEAR, f"s{i}") for i in range(3)])
        counter.count = 0
        appended = log_store.append_all(store, [(entry(i), CLEAR, f"s{i}") for i in range(3, 70)])
        assert counter.count <= 3  # the size is known; older siblings, nodes, entries
    assert [index for index, _ in appended] == list(range(3, 70))

    def table(e: Engine, t: Any) -> list[Any]:
        with e.connect() as conn:
            return sorted(tuple(row) for row in conn.execute(select(t)))

    for t in (schema.log_entries, schema.log_nodes):
        assert table(other, t) == table(log_of_70, t)
    with other.connect() as conn:
        assert log_store.root_hex(conn, 70) == mth([leaf_text(i) for i in range(70)]).hex()
    other.dispose()


def test_roots_and_every_proof_match_the_reference(log_of_70: Engine) -> None:
    leaves = [leaf_text(i) for i in range(70)]
    with log_of_70.connect() as conn:
        assert log_store.root_hex(conn, 0) == sha256(b"").hex()
        # Every size up to 33 (all shapes of a 5-level tree) and a few around 2^6.
        for size in [*range(1, 34), 63, 64, 65, 70]:
            assert log_store.root_hex(conn, size) == mth(leaves[:size]).hex()
            for index in range(size):
                assert log_store.inclusion_proof(conn, index, size) == path(index, leaves[:size])
            for first in range(1, size + 1):
                assert log_store.consistency_proof(conn, first, size) == proof(first, leaves[:size])


def test_a_proof_is_one_query_of_at_most_2_log_n_nodes(engine: Engine) -> None:
    with engine.begin() as conn:
        for i in range(1000):
            append(conn, i)
    counter = StatementCounter(engine)
    with engine.connect() as conn:
        for index, size in [(0, 1000), (999, 1000), (517, 777), (0, 1)]:
            store = log_store.DatabaseNodeStore(conn)
            merkle.inclusion_proof(store, index, size)
            assert store.queries <= 1 and store.reads <= 2 * 10
        counter.count = 0
        log_store.inclusion_proof(conn, 517, 1000)
        log_store.consistency_proof(conn, 333, 1000)
        assert counter.count == 4  # each: the size, then one node query


def test_a_million_entry_log_reads_only_log_n_nodes(engine: Engine) -> None:
    """A proof in a log of 10^6 entries touches ~40 node rows, whatever else the table holds.

    Building a real million-entry table would only slow the suite: the nodes a proof needs
    are computed here, stored, and the proof must read those and nothing else.
    """

    def fake_node(level: int, idx: int) -> bytes:
        return sha256(f"{level}/{idx}".encode())

    class Recorder:
        def __init__(self) -> None:
            self.keys: list[merkle.NodeKey] = []

        def size(self) -> int:
            return 1_000_000

        def get_nodes(self, keys: Any) -> list[bytes]:
            self.keys += keys
            return [fake_node(*key) for key in keys]

        def put_nodes(self, nodes: Any) -> None:
            raise AssertionError("read only")

    recorder = Recorder()
    requests = [(0, 1_000_000), (999_999, 1_000_000), (123_456, 654_321)]
    expected = [merkle.inclusion_proof(recorder, i, n) for i, n in requests]
    expected_consistency = merkle.consistency_proof(recorder, 524_289, 1_000_000)
    with engine.begin() as conn:
        conn.execute(
            insert(schema.log_entries),
            [
                {
                    "idx": 999_999,
                    "leaf": "{}",
                    "leaf_hash": b"",
                    "entry_type": "x",
                    "subject": "x",
                    "at": "t",
                }
            ],
        )
        conn.execute(
            insert(schema.log_nodes),
            [{"level": lv, "idx": ix, "hash": fake_node(lv, ix)} for lv, ix in set(recorder.keys)],
        )
    with engine.connect() as conn:
        for (index, size), want in zip(requests, expected, strict=True):
            store = log_store.DatabaseNodeStore(conn)
            assert merkle.inclusion_proof(store, index, size) == want
            assert store.queries == 1 and store.reads <= 40
            assert log_store.inclusion_proof(conn, index, size) == want
        assert log_store.consistency_proof(conn, 524_289, 1_000_000) == expected_consistency


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: log_store.inclusion_proof(c, 70, 70), "index"),
        (lambda c: log_store.inclusion_proof(c, 0, 71), "size"),
        (lambda c: log_store.consistency_proof(c, 5, 71), "second"),
        (lambda c: log_store.consistency_proof(c, 8, 7), "first"),
        (lambda c: log_store.root_hex(c, 71), "size"),
        (lambda c: log_store.leaf_hash_at(c, 70), "index"),
    ],
)
def test_requests_beyond_the_log_are_invalid_requests_naming_the_field(
    log_of_70: Engine, call: Any, field: str
) -> None:
    with log_of_70.connect() as conn, pytest.raises(InvalidRequest) as raised:
        call(conn)
    assert raised.value.errors[0]["field"] == field


# --- heads, entries, receipts ----------------------------------------------------------------


def test_one_signed_head_per_size(log_of_70: Engine, key: Any) -> None:
    public = signing.public_key_b64(key)
    with log_of_70.begin() as conn:
        assert log_store.latest_head(conn) is None
        head = log_store.issue_head(conn, key, "2016-12-14T05:00:00Z")
        assert head["size"] == 70
        assert head["root"] == mth([leaf_text(i) for i in range(70)]).hex()
        assert signing.verify_head(public, head)
        # Asked again for the same size, later: the same head, not a second signature.
        assert log_store.issue_head(conn, key, "2016-12-14T06:00:00Z") == head
        append(conn, 70)
        newer = log_store.issue_head(conn, key, "2016-12-14T07:00:00Z")
        assert newer["size"] == 71 and signing.verify_head(public, newer)
        assert log_store.latest_head(conn) == newer
        assert dict(log.head_at(conn, 70) or {}) == head
        assert conn.execute(select(func.count()).select_from(schema.tree_heads)).scalar_one() == 2


def test_head_of_the_empty_log_signs_the_empty_root(engine: Engine, key: Any) -> None:
    with engine.begin() as conn:
        head = log_store.issue_head(conn, key, "2016-12-14T05:00:00Z")
    assert head["size"] == 0 and head["root"] == sha256(b"").hex()


def test_entries_are_the_half_open_range_in_order(log_of_70: Engine) -> None:
    with log_of_70.connect() as conn:
        got = log_store.entries(conn, 10, 13)
        assert [e["index"] for e in got] == [10, 11, 12]
        assert json.loads(got[0]["leaf"])["n"] == 10
        assert log_store.entries(conn, 69, 1000) == [{"index": 69, "leaf": leaf_text(69).decode()}]
        assert log_store.entries(conn, 70, 80) == []


def test_receipt_names_the_entry_and_a_head_that_includes_it(log_of_70: Engine, key: Any) -> None:
    with log_of_70.begin() as conn:
        head = log_store.issue_head(conn, key, "2016-12-14T05:00:00Z")
        receipt = log_store.receipt(conn, 69, head)
        assert receipt == {
            "index": 69,
            "leaf_hash": sha256(b"\x00" + leaf_text(69)).hex(),
            "tree_head": head,
        }
        with pytest.raises(ValueError):
            log_store.receipt(conn, 70, head)
