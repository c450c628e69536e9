"""Small key/value facts of the deployment kept in the ``meta`` table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, inspect, select, update
from sqlalchemy.engine import Connection

from deconflict.storage.schema import meta

if TYPE_CHECKING:
    from deconflict.storage.database import Database

CHANGE_SEQ = "change_seq"
POLICY_ID = "policy_id"
PARTIES_SEQ = "parties_seq"


def has_meta(conn: Connection) -> bool:
    """Whether the database has the ``meta`` table (looks without creating anything)."""
    return inspect(conn).has_table("meta")


# Built once: every declaration change reads and sets the change counter.
_GET = select(meta.c.value).where(meta.c.key == bindparam("meta_key"))
_SET = update(meta).where(meta.c.key == bindparam("meta_key")).values(value=bindparam("meta_value"))


def get_meta(conn: Connection, key: str) -> str | None:
    value: str | None = conn.execute(_GET, {"meta_key": key}).scalar_one_or_none()
    return value


def set_meta(conn: Connection, key: str, value: str) -> None:
    if get_meta(conn, key) is None:
        conn.execute(meta.insert().values(key=key, value=value))
    else:
        conn.execute(_SET, {"meta_key": key, "meta_value": value})


def increment(conn: Connection, key: str) -> int:
    """Bump a counter kept in ``meta``; call only inside a write transaction."""
    current = int(get_meta(conn, key) or "0")
    set_meta(conn, key, str(current + 1))
    return current + 1


def next_change_seq(conn: Connection) -> int:
    """The next value of the global declaration change counter."""
    return increment(conn, CHANGE_SEQ)


@dataclass(frozen=True)
class Counters:
    """What a process checks before trusting its caches: one small query per request.

    ``change_seq`` moves with every declaration change (the conflict index), ``policy_id``
    with every policy change, ``parties_seq`` with every registration or revocation (the
    token cache). Any process may have moved them."""

    change_seq: int
    policy_id: str | None
    parties_seq: int


# Plain SQL: this runs on every request, and SQLAlchemy's expression layer costs more than
# the query itself (the statement is constant, so nothing is lost).
_COUNTERS_SQL = (
    f"SELECT key, value FROM meta WHERE key IN ('{CHANGE_SEQ}', '{POLICY_ID}', '{PARTIES_SEQ}')"
)


def read_counters(conn: Connection) -> Counters:
    return counters_of(conn.exec_driver_sql(_COUNTERS_SQL).all())


def peek_counters(db: Database) -> Counters:
    """The counters, read by one statement outside any transaction: for a request that reads
    nothing else from the database when no cache is stale."""
    return counters_of(db.peek(_COUNTERS_SQL))


def counters_of(rows: Sequence[Sequence[Any]]) -> Counters:
    values: dict[str, str] = {str(k): str(v) for k, v in rows}
    return Counters(
        change_seq=int(values.get(CHANGE_SEQ, 0)),
        policy_id=values.get(POLICY_ID),
        parties_seq=int(values.get(PARTIES_SEQ, 0)),
    )
