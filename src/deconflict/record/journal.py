"""Writing to the record inside a write transaction, and the receipts it gives back.

Every accepted change appends its entries in the same transaction as the change, and the
transaction ends by signing one tree head that includes them all; a receipt names the entry's
index and that head, so the writer can later prove the entry was logged.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Connection

from deconflict.record import log_store
from deconflict.record.entries import Builder, Row


class Journal:
    def __init__(self, conn: Connection, key: Ed25519PrivateKey, now: str) -> None:
        self._conn = conn
        self._key = key
        self._now = now
        self._hashes: dict[int, str] = {}
        self._head: dict[str, Any] | None = None
        # One node store for the transaction: every append here goes through the journal.
        self._store = log_store.DatabaseNodeStore(conn)

    def append(self, entry: dict[str, Any], *, subject: str) -> int:
        """Append one entry (sealed unless every party sees it); returns its index. The entry's
        type is the one its builder in ``deconflict.record.entries`` wrote into it, so the type
        logged beside the leaf (which ``verify`` uses to find the rows to rebuild it from)
        cannot drift from the entry itself."""
        # A head signed earlier in this transaction stays valid for the receipts that hold
        # it (it includes their entries); the next head covers this entry as well.
        self._head = None
        index, digest = log_store.append_logged(
            self._conn,
            entry,
            entry_type=str(entry["type"]),
            subject=subject,
            at=str(entry["at"]),
            store=self._store,
        )
        self._hashes[index] = digest.hex()
        return index

    def record(self, build: Builder, row: Row, *, subject: str | None = None) -> int:
        """Append the entry ``build`` makes of ``row``, the row as stored (the storage
        functions that write a row logged in the record return it read back, so the entry is
        the one ``verify`` rebuilds from that row); returns its index. ``subject`` names the
        row for ``verify``: its id unless given (a declaration version's is
        ``"<declaration id>/<version>"``)."""
        return self.append(build(row), subject=str(row["id"]) if subject is None else subject)

    def append_all(self, items: list[tuple[dict[str, Any], str]]) -> list[int]:
        """Append ``(entry, subject)`` items at once; returns their indexes."""
        self._head = None
        typed = [(entry, str(entry["type"]), subject) for entry, subject in items]
        appended = log_store.append_all(self._store, typed)
        for index, digest in appended:
            self._hashes[index] = digest.hex()
        return [index for index, _ in appended]

    @property
    def unsigned(self) -> bool:
        """Whether entries were appended since the last signed head."""
        return bool(self._hashes) and self._head is None

    def head(self) -> dict[str, Any]:
        """Sign the head over everything appended so far."""
        if self._head is None:
            self._head = log_store.issue_head(self._conn, self._key, self._now)
        return self._head

    def receipt(self, index: int) -> dict[str, Any]:
        return {"index": index, "leaf_hash": self._hashes[index], "tree_head": self.head()}
