"""Rows by their ``id``: what every aggregate with an ``id`` key (notifications, parties,
subscriptions, policy versions) does the same way, written once.

``insert`` gives the row back as the database stores it, because record entries are built
from stored rows only (``deconflict.record.entries``): a default or a type the database
applies is then in the entry, as ``verify`` will rebuild it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, Table, bindparam, select
from sqlalchemy.engine import Connection, RowMapping


def insert(conn: Connection, table: Table, values: Mapping[str, Any]) -> RowMapping:
    """Store a row; returns it as stored."""
    # The values as parameters of one cached statement, not compiled into a new one each
    # time (``.values(**values)`` builds and keys a statement per call: a write's hot path).
    conn.execute(table.insert(), dict(values))
    return get(conn, table, str(values["id"]))


def get(conn: Connection, table: Table, key: str) -> RowMapping:
    """The row with this ``id``, which must exist (``LookupError`` names the table)."""
    found = find(conn, table, key)
    if found is None:
        raise LookupError(f"no {table.name} row {key!r}")
    return found


def find(conn: Connection, table: Table, key: str) -> RowMapping | None:
    """The row with this ``id``, if there is one."""
    return conn.execute(_by_id(table), {"key": key}).mappings().one_or_none()


@functools.cache
def _by_id(table: Table) -> Select[Any]:
    # Built once per table: a write reads back every row it stores.
    return select(table).where(table.c.id == bindparam("key"))
