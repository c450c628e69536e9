"""Small key/value facts of the deployment kept in the ``meta`` table."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from deconflict.storage.schema import meta


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()


def set_meta(conn: Connection, key: str, value: str) -> None:
    if get_meta(conn, key) is None:
        conn.execute(meta.insert().values(key=key, value=value))
    else:
        conn.execute(update(meta).where(meta.c.key == key).values(value=value))


def next_change_seq(conn: Connection) -> int:
    """The next value of the global change counter; call only inside a write transaction."""
    current = int(get_meta(conn, "change_seq") or "0")
    set_meta(conn, "change_seq", str(current + 1))
    return current + 1
