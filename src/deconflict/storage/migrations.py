"""Schema migrations: Alembic, driven from code, so that users need no ``alembic.ini``.

The revisions are in ``deconflict/storage/alembic/versions``, numbered ``0001``, ``0002``, …;
``schema.py`` always describes the head revision (``tests/storage/test_migrations.py`` compares the
two on SQLite and PostgreSQL). ``deconflict init`` creates the schema by upgrading an empty
database to the head; ``deconflict migrate`` upgrades an older one; every other command
refuses a database whose revision is not the head (``schema_problem``).

A migration runs inside one ``Database.write`` transaction: all of it commits or none of it
does (SQLite and PostgreSQL both have transactional DDL), and it holds the deployment's write
lock, so two ``migrate`` commands cannot interleave and no write runs in the middle of one.

Databases made before migrations existed were created with ``create_all`` and carry
``meta.schema_version`` "1": their schema is exactly revision ``0001``, so ``upgrade``
stamps them with it before going on.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import delete, func, inspect, select
from sqlalchemy.engine import Connection

from deconflict.errors import InvalidRequest
from deconflict.storage.database import Database
from deconflict.storage.meta import get_meta
from deconflict.storage.schema import meta, metadata

# The revision of the schema that deconflict made with ``create_all`` before it had migrations,
# and the ``meta.schema_version`` it wrote then.
BASELINE_REVISION = "0001"
PRE_MIGRATIONS_SCHEMA_VERSION = "1"


def head_revision() -> str:
    """The revision this deconflict's code needs: the newest one it ships."""
    head = _scripts().get_current_head()
    assert head is not None, "deconflict ships at least one migration"
    return head


def current_revision(db: Database) -> str | None:
    """The database's revision; None when it has none (empty, or made before migrations)."""
    with db.read() as conn:
        return _revision(conn)


def upgrade(db: Database, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (default: the head) in one transaction.

    An empty database gets the whole schema; one at ``revision`` already is left as it is.
    Raises ``InvalidRequest`` for a database this code cannot migrate: one with a revision it
    does not know (a newer deconflict migrated it), or tables but no revision.
    """
    with db.write() as conn:
        config = _config(conn)
        _adopt_pre_migrations_schema(conn, config)
        current = _revision(conn)
        if current is not None and current not in _known_revisions():
            raise InvalidRequest(_unknown_revision(db, current), field="db")
        command.upgrade(config, revision)


def schema_problem(db: Database) -> str | None:
    """Why this code must not run on ``db`` as its schema stands, or None when it may."""
    current, head = current_revision(db), head_revision()
    if current == head:
        return None
    if current is not None and current not in _known_revisions():
        return _unknown_revision(db, current)
    return (
        f"the database {db.url} is at schema revision {current or 'none (made before migrations)'}"
        f" and this deconflict needs revision {head}: run `deconflict migrate --db {db.url}`"
    )


def _revision(conn: Connection) -> str | None:
    # Reads alembic_version when it exists; creates nothing.
    return MigrationContext.configure(conn).get_current_revision()


def _adopt_pre_migrations_schema(conn: Connection, config: Config) -> None:
    tables = set(inspect(conn).get_table_names())
    ours = tables & set(metadata.tables)  # a PostgreSQL schema may hold others' tables too
    if "alembic_version" in tables or not ours:
        return
    if "meta" in ours and get_meta(conn, "schema_version") == PRE_MIGRATIONS_SCHEMA_VERSION:
        command.stamp(config, BASELINE_REVISION)
        # alembic_version says it from now on; two places would one day disagree.
        conn.execute(delete(meta).where(meta.c.key == "schema_version"))
    elif ours == {"meta"} and conn.execute(select(func.count()).select_from(meta)).scalar() == 0:
        # Before migrations, merely asking whether a database was initialised created this
        # empty table; it holds nothing, and revision 0001 creates it again.
        meta.drop(conn)
    else:
        raise InvalidRequest(
            "the database has deconflict tables but no schema revision, and is not a "
            "deconflict database of schema version 1: it cannot be migrated",
            field="db",
        )


def _unknown_revision(db: Database, revision: str) -> str:
    return (
        f"the database {db.url} is at schema revision {revision}, which this deconflict does "
        f"not know (its newest is {head_revision()}): a newer deconflict migrated it"
    )


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    # A directory on disk: deconflict is installed unzipped, and importlib.resources.as_file
    # hands out directories only from Python 3.12. '%' is configparser's interpolation.
    location = str(resources.files("deconflict") / "storage" / "alembic")
    config.set_main_option("script_location", location.replace("%", "%%"))
    # env.py runs the migrations on this connection, inside the caller's transaction.
    config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


@cache
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())
