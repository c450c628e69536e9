"""Opening the database, and the two kinds of transaction every module uses.

Writes are serialised: SQLite takes its write lock at ``BEGIN IMMEDIATE``; PostgreSQL takes a
transaction-level advisory lock. Inside a write transaction a conflict check therefore sees
every committed declaration and nothing can commit between the check and the write, across
threads and processes alike. That is what makes the awareness key race-free: of two blind
conflicting writes, the second sees the first and is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from deconflict.errors import InvalidRequest

# Any constant will do: every deconflict process on one PostgreSQL database uses the same one.
WRITE_LOCK_KEY = 0x6465636F6E66  # "deconf"


def engine_url(url: str) -> str:
    """Translate the user-facing URL of API.md to SQLAlchemy's driver URL."""
    if url.startswith("sqlite:///"):
        return "sqlite+pysqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+psycopg://"):
        return url
    raise InvalidRequest(
        f"unsupported database URL {url!r}: use sqlite:///path/to/file.db or postgresql://…",
        field="db",
    )


class Database:
    """One database, shared by every thread of a process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: Engine = self._create_engine(engine_url(url))
        # Threads of one process queue here instead of spinning on SQLite's busy handler.
        self._write_lock = threading.Lock()

    def _create_engine(self, url: str) -> Engine:
        if not self.is_sqlite:
            return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself (pysqlite's own transaction handling is off).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # WAL lets readers work while a writer commits; synchronous=FULL makes a commit
            # durable before the client gets its 2xx, so a kill -9 loses nothing accepted.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            immediate = connection.get_execution_options().get("deconflict_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: a consistent snapshot, never blocked by writers."""
        with self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """The one write transaction at a time, across threads and processes."""
        with self._write_lock, self.engine.connect() as base:
            connection = base.execution_options(deconflict_write=True)
            with connection.begin():
                if not self.is_sqlite:
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY}
                    )
                yield connection

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str) -> Database:
    try:
        return Database(url)
    except OperationalError as exc:
        raise InvalidRequest(f"cannot open the database {url!r}: {exc}", field="db") from exc
