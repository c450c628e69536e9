"""The record in the database: entries, complete-subtree nodes and signed heads.

The log's logic is here; its SQL is ``deconflict.storage.log``'s.

Every function takes a ``Connection`` whose transaction the caller owns, so an entry is
appended in the same transaction as the change it logs and both commit or neither does.

Concurrency: appends must be serialised by the caller (``Database.write`` takes SQLite's
write lock or a PostgreSQL advisory lock). Should two appends ever race anyway, both would
claim the same ``log_entries.idx`` primary key and one transaction fails: the log can be
refused a write, never forked.

Cost: the current size is ``max(idx)`` on the primary key; an append reads and writes
O(log n) nodes; a root or proof reads O(log n) nodes in one query. Nothing reads the leaves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Connection

from deconflict.errors import InvalidRequest
from deconflict.record import merkle
from deconflict.record.canonical import canonical_json
from deconflict.record.entries import record_form
from deconflict.record.signing import sign_head
from deconflict.storage import log


class DatabaseNodeStore:
    """``merkle.NodeStore`` over the ``log_nodes`` table of one connection.

    It remembers the nodes it wrote: a transaction that appends many entries through one store
    (a change and its notifications) reads back from the table only the siblings older than it.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.reads = 0  # node hashes read, for tests that charge proofs by reads
        self.queries = 0
        self._size: int | None = None
        self._written: dict[merkle.NodeKey, bytes] = {}
        self._pending: list[dict[str, Any]] | None = None

    def size(self) -> int:
        # Read once: a store lives inside one transaction (the journal's, or one operation).
        if self._size is None:
            self._size = log_size(self.conn)
        return self._size

    def get_nodes(self, keys: Sequence[merkle.NodeKey]) -> list[bytes]:
        # Not ``set(keys) - self._written.keys()``, which copies every key written so far:
        # quadratic in a transaction that appends thousands of entries (an import's chunk).
        wanted = {key for key in keys if key not in self._written}
        if not wanted:
            return [self._written[key] for key in keys]
        found = log.node_hashes(self.conn, wanted)  # one query for a whole proof
        self.queries += 1
        self.reads += len(found)
        missing = wanted - found.keys()
        if missing:
            raise LookupError(f"the record has no Merkle node at (level, idx) {min(missing)}")
        return [self._written.get(key) or found[key] for key in keys]

    def put_nodes(self, nodes: Sequence[merkle.Node]) -> None:
        rows = [{"level": level, "idx": idx, "hash": digest} for level, idx, digest in nodes]
        if self._pending is not None:
            self._pending.extend(rows)
        else:
            log.insert_nodes(self.conn, rows)
        for level, idx, digest in nodes:
            self._written[(level, idx)] = digest
            if level == 0:
                self._size = max(self.size(), idx + 1)

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Write the nodes put meanwhile in one statement, at the end (reads are served from
        what this store wrote, so nothing needs them in the table before)."""
        self._pending = []
        try:
            yield
            if self._pending:
                log.insert_nodes(self.conn, self._pending)
        finally:
            self._pending = None


def log_size(conn: Connection) -> int:
    """How many entries the log holds (committed ones, plus this transaction's own)."""
    return log.log_size(conn)


def append_logged(
    conn: Connection,
    entry: dict[str, Any],
    *,
    entry_type: str,
    subject: str,
    at: str,
    store: DatabaseNodeStore | None = None,
) -> tuple[int, bytes]:
    """Append ``entry`` in its record form (``entries.record_form``: sealed, unless every
    party sees it); returns its index and leaf hash. ``store``: the transaction's node store,
    when it appends through one (every append of the transaction must then go through it).

    The leaf stored is the canonical JSON of that form; ``entry_type``, ``subject`` and ``at``
    are kept beside it so that ``deconflict verify`` can find the row to rebuild it from, and
    a sealed leaf's entry and salt so that it can be opened to those who may see it.
    """
    values = _entry_row(store or DatabaseNodeStore(conn), entry, entry_type, subject, at)
    log.insert_entries(conn, [values])
    return values["idx"], values["leaf_hash"]


def append_all(
    store: DatabaseNodeStore, items: Sequence[tuple[dict[str, Any], str, str]]
) -> list[tuple[int, bytes]]:
    """Append ``(entry, entry_type, subject)`` items through ``store`` (the transaction's),
    their rows and nodes in one statement each: for the many entries of one change."""
    rows: list[dict[str, Any]] = []
    with store.batched():
        for entry, entry_type, subject in items:
            rows.append(_entry_row(store, entry, entry_type, subject, str(entry["at"])))
    log.insert_entries(store.conn, rows)
    return [(row["idx"], row["leaf_hash"]) for row in rows]


def _entry_row(
    store: DatabaseNodeStore, entry: dict[str, Any], entry_type: str, subject: str, at: str
) -> dict[str, Any]:
    """Append the entry's leaf to the tree through ``store``; its ``log_entries`` row."""
    if entry.get("type") != entry_type:
        raise ValueError(f"entry of type {entry.get('type')!r} appended as {entry_type!r}")
    logged = record_form(entry)
    leaf = canonical_json(logged.leaf)
    digest = merkle.leaf_hash(leaf.encode("utf-8"))
    # Nodes first: the store's size is max(idx) of log_entries, which the entry row would move.
    _, index, _ = merkle.append(store, digest)[0]
    values: dict[str, Any] = {
        "idx": index,
        "leaf": leaf,
        "leaf_hash": digest,
        "entry_type": entry_type,
        "subject": subject,
        "at": at,
    }
    if logged.sealed is not None:
        # Named only when set, so that a clear entry is written the same on every schema.
        values |= {"sealed": logged.sealed, "salt": logged.salt}
    return values


def root_hex(conn: Connection, size: int) -> str:
    """The tree hash of the first ``size`` entries, in hex."""
    return merkle.root(_store_for(conn, size, "size"), size).hex()


def inclusion_proof(conn: Connection, index: int, size: int) -> list[bytes]:
    """The RFC 6962 audit path of entry ``index`` in the tree of ``size`` entries."""
    store = _store_for(conn, size, "size")
    if not 0 <= index < size:
        raise InvalidRequest(f"index must be below size ({size})", field="index")
    return merkle.inclusion_proof(store, index, size)


def consistency_proof(conn: Connection, first: int, second: int) -> list[bytes]:
    """The RFC 6962 proof that the tree of ``first`` entries is a prefix of that of ``second``."""
    store = _store_for(conn, second, "second")
    if not 0 <= first <= second:
        raise InvalidRequest(f"first must be between 0 and second ({second})", field="first")
    return merkle.consistency_proof(store, first, second)


def leaf_hash_at(conn: Connection, index: int) -> bytes:
    """The stored leaf hash of entry ``index``."""
    digest = log.leaf_hash_at(conn, index)
    if digest is None:
        raise InvalidRequest(f"the log has no entry {index}", field="index")
    return digest


def issue_head(conn: Connection, key: Ed25519PrivateKey, timestamp: str) -> dict[str, Any]:
    """The signed head for the current size, signing and storing it if it is the first.

    Exactly one root is ever signed per size: a second signature for a size, even over the
    same root with another timestamp, would be two heads a client could not tell apart.
    """
    size = log_size(conn)
    existing = _head_at(conn, size)
    if existing is not None:
        return existing
    head = sign_head(key, size, root_hex(conn, size), timestamp)
    log.insert_head(conn, head)
    return head


def latest_head(conn: Connection) -> dict[str, Any] | None:
    """The signed head of the largest size, or None before the first head."""
    row = log.latest_head(conn)
    return None if row is None else _head_json(row)


def entries(conn: Connection, start: int, end: int) -> list[dict[str, Any]]:
    """``[{"index", "leaf"}]`` for start <= index < end, in index order."""
    return log.entries(conn, start, end)


def receipt(conn: Connection, index: int, head: dict[str, Any]) -> dict[str, Any]:
    """The Receipt ``{"index", "leaf_hash", "tree_head"}`` of entry ``index`` under ``head``."""
    if not 0 <= index < head["size"]:
        raise ValueError(f"a head of size {head['size']} does not include entry {index}")
    return {"index": index, "leaf_hash": leaf_hash_at(conn, index).hex(), "tree_head": head}


def existing_receipt(conn: Connection, entry_type: str, subject: str) -> dict[str, Any]:
    """A receipt for the entry ``(entry_type, subject)`` logged earlier, under the latest
    signed head."""
    head = latest_head(conn)
    if head is None:
        raise LookupError("the log has no signed head")
    return receipt(conn, log.index_of(conn, entry_type, subject), head)


def _store_for(conn: Connection, size: int, field: str) -> DatabaseNodeStore:
    # Requests for sizes the log has not reached are the caller's mistake (400), not ours.
    store = DatabaseNodeStore(conn)
    current = store.size()
    if not 0 <= size <= current:
        raise InvalidRequest(f"{field} must be between 0 and the log size ({current})", field=field)
    return store


def _head_at(conn: Connection, size: int) -> dict[str, Any] | None:
    row = log.head_at(conn, size)
    return None if row is None else _head_json(row)


def _head_json(row: Any) -> dict[str, Any]:
    return {
        "size": int(row["size"]),
        "root": row["root"],
        "timestamp": row["timestamp"],
        "signature": row["signature"],
    }
