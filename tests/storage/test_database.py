"""The write transaction on SQLite: writers of every process queue on one lock file."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from sqlalchemy import text

from deconflict.storage.database import Database


def test_sqlite_writers_wait_on_the_lock_file_beside_the_database(tmp_path: Path) -> None:
    """Another process holding ``<db>-writer`` (here: another open file, which flock
    treats alike) holds every write back until it lets go; reads go on meanwhile."""
    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    lock_file = tmp_path / "d.db-writer"
    assert lock_file.exists()
    other = os.open(lock_file, os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)
    wrote = threading.Event()

    def write() -> None:
        with db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        wrote.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert not wrote.wait(0.5)
        with db.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    writer.join(10)
    assert wrote.is_set()
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    db.dispose()


def test_a_peek_sees_each_commit(db_url: str) -> None:
    """``peek`` (one statement outside a transaction: the counters every request reads)
    sees every commit made since. Had it left its pooled connection inside a transaction,
    SQLite would answer the next peek from that transaction's old snapshot."""
    db = Database(db_url)
    try:
        with db.write() as conn:
            conn.execute(text("CREATE TABLE t (n INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (7)"))
        for n in (7, 8, 9):
            assert db.peek("SELECT n FROM t") == [(n,)]
            with db.write() as conn:
                conn.execute(text("UPDATE t SET n = n + 1"))
    finally:
        db.dispose()
