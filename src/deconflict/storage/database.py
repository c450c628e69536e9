"""Opening the database, and the two kinds of transaction every module uses.

Writes are serialised: SQLite takes its write lock at ``BEGIN IMMEDIATE``; PostgreSQL takes a
transaction-level advisory lock. Inside a write transaction a conflict check therefore sees
every committed declaration and nothing can commit between the check and the write, across
threads and processes alike. That is what makes the awareness key race-free: of two blind
conflicting writes, the second sees the first and is refused.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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
        self._writers = _WriterFile(url) if self.is_sqlite else None
        if self.is_sqlite:
            owner_only(sqlite_path(url))

    def _create_engine(self, url: str) -> Engine:
        if not self.is_sqlite:
            return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        # As many pooled connections as request threads (anyio's 40): a connection opened
        # beyond the pool is closed after one use, and opening one costs more than a read.
        engine = create_engine(
            url,
            pool_size=40,
            max_overflow=10,
            connect_args={"timeout": 60, "check_same_thread": False},
        )

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

    def peek(self, sql: str) -> list[tuple[Any, ...]]:
        """One constant read-only statement, outside any transaction: a single statement is
        atomic by itself, and a transaction costs two more statements (BEGIN and COMMIT),
        which is most of the database's share of a conflict check."""
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(sql)
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()
        finally:
            raw.close()  # back to the pool, which ends any transaction the driver began

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """The one write transaction at a time, across threads and processes."""
        with self._write_lock, self._between_processes(), self.engine.connect() as base:
            connection = base.execution_options(deconflict_write=True)
            with connection.begin():
                if not self.is_sqlite:
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY}
                    )
                yield connection

    @contextmanager
    def _between_processes(self) -> Iterator[None]:
        if self._writers is None:
            yield
        else:
            with self._writers.held():
                yield

    def dispose(self) -> None:
        self.engine.dispose()


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL; None for an in-memory database."""
    database = url.removeprefix("sqlite:///").removeprefix("sqlite+pysqlite:///")
    database = database.split("?", 1)[0]
    return None if database in ("", ":memory:") else Path(database)


SIDE_FILES = ("-wal", "-shm", "-journal", "-writer")


def owner_only(database: Path | None) -> None:
    """Make the SQLite file and its side files readable by their owner only (0600), like the
    signing key: they hold every declaration's geometry and every party's token hash.

    A missing file is created here with mode 0600 before SQLite opens it, since SQLite
    creates files 0644; SQLite then gives its -wal and -shm files the database file's mode.
    Files of a deployment made before this are narrowed when they belong to this user (the
    files of another user are left alone: a reader such as ``verify`` may not own them).
    """
    if database is None:
        return
    try:
        descriptor = os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError:
        return  # a missing directory or a read-only place: SQLite says so, clearly
    else:
        os.close(descriptor)
    for path in (database, *(Path(f"{database}{side}") for side in SIDE_FILES)):
        try:
            status = path.stat()
            if status.st_uid == os.getuid() and status.st_mode & 0o077:
                path.chmod(status.st_mode & 0o7700)
        except OSError:
            continue  # absent, or not ours to change


class _WriterFile:
    """Writers of several processes on one SQLite file wait their turn on a lock file.

    SQLite's own lock is no queue between processes: a writer that finds it taken sleeps and
    tries again, up to 100 ms at a time, so under load some writes lose again and again (a
    p99 of seconds with two processes). A blocked ``flock`` is woken by the kernel as soon as
    the lock is released. ``BEGIN IMMEDIATE`` still takes SQLite's lock after it, so a
    process that does not use this file (an older deconflict, the sqlite3 shell) stays safe.
    """

    def __init__(self, url: str) -> None:
        database = url.removeprefix("sqlite:///")
        self.path = None if database in ("", ":memory:") else Path(database + "-writer")
        self._fd = -1
        self._pid = -1

    @contextmanager
    def held(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        if self._pid != os.getpid():
            # A forked child shares its parent's open file, and with it the parent's lock.
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


def open_database(url: str) -> Database:
    try:
        return Database(url)
    except OperationalError as exc:
        raise InvalidRequest(f"cannot open the database {url!r}: {exc}", field="db") from exc
