"""The SQL of the record: ``log_entries``, ``log_nodes`` and ``tree_heads``.

The log's logic (the Merkle tree, the record form of an entry, the one head per size) is
``deconflict.record.log_store``'s; these functions only read and write its rows, inside the
caller's transaction. Also here: the declaration versions looked up by their place in the
log, which the record rebuilds declaration leaves from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Row, RowMapping

from deconflict.storage.schema import log_entries, log_nodes, tree_heads

NodeKey = tuple[int, int]  # (level, idx), as ``merkle.NodeKey``


def log_size(conn: Connection) -> int:
    """How many entries the log holds (committed ones, plus this transaction's own)."""
    last = conn.execute(select(func.max(log_entries.c.idx))).scalar_one()
    return 0 if last is None else int(last) + 1


def node_hashes(conn: Connection, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    """The stored hashes of the nodes ``keys`` (those that exist), in one query."""
    # An OR of (level, idx) pairs, which both SQLite and PostgreSQL answer from the primary key.
    condition = or_(*(and_(log_nodes.c.level == lv, log_nodes.c.idx == ix) for lv, ix in keys))
    rows = conn.execute(
        select(log_nodes.c.level, log_nodes.c.idx, log_nodes.c.hash).where(condition)
    )
    return {(row.level, row.idx): bytes(row.hash) for row in rows}


def insert_nodes(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store ``{"level", "idx", "hash"}`` nodes in one statement."""
    conn.execute(log_nodes.insert(), list(rows))


def insert_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store ``log_entries`` rows, one statement per set of columns (a clear entry names no
    ``sealed``/``salt``, so that it is written the same on every schema)."""
    for columns in dict.fromkeys(tuple(row) for row in rows):
        conn.execute(log_entries.insert(), [row for row in rows if tuple(row) == columns])


def leaf_hash_at(conn: Connection, index: int) -> bytes | None:
    """The stored leaf hash of entry ``index``; None when the log has no such entry."""
    digest = conn.execute(
        select(log_entries.c.leaf_hash).where(log_entries.c.idx == index)
    ).scalar_one_or_none()
    return None if digest is None else bytes(digest)


def entries(conn: Connection, start: int, end: int) -> list[dict[str, Any]]:
    """``[{"index", "leaf"}]`` for start <= index < end, in index order."""
    rows = conn.execute(
        select(log_entries.c.idx, log_entries.c.leaf)
        .where(log_entries.c.idx >= start, log_entries.c.idx < end)
        .order_by(log_entries.c.idx)
    )
    return [{"index": int(row.idx), "leaf": row.leaf} for row in rows]


def seal_at(conn: Connection, index: int) -> tuple[str, str] | None:
    """The sealed entry (canonical JSON) and salt stored beside leaf ``index``; None when the
    leaf is in clear or absent."""
    row = conn.execute(
        select(log_entries.c.sealed, log_entries.c.salt).where(log_entries.c.idx == index)
    ).one_or_none()
    if row is None or row.sealed is None:
        return None
    return str(row.sealed), str(row.salt)


def index_of(conn: Connection, entry_type: str, subject: str) -> int:
    """The index of the entry ``(entry_type, subject)``, which must exist."""
    return int(
        conn.execute(
            select(log_entries.c.idx).where(
                log_entries.c.entry_type == entry_type, log_entries.c.subject == subject
            )
        ).scalar_one()
    )


def entries_about(conn: Connection, subject: str, entry_types: Sequence[str]) -> list[Row[Any]]:
    """``(idx, entry_type, leaf)`` of the entries of these types logged about ``subject``, in
    log order."""
    return list(
        conn.execute(
            select(log_entries.c.idx, log_entries.c.entry_type, log_entries.c.leaf)
            .where(log_entries.c.subject == subject, log_entries.c.entry_type.in_(entry_types))
            .order_by(log_entries.c.idx)
        )
    )


def entry_rows_after(conn: Connection, last: int | None, limit: int) -> list[Row[Any]]:
    """Up to ``limit`` whole ``log_entries`` rows after index ``last`` (None: from the first),
    in index order: the audit streams the log in such batches."""
    query = select(log_entries).order_by(log_entries.c.idx).limit(limit)
    if last is not None:
        query = query.where(log_entries.c.idx > last)
    return list(conn.execute(query))


def nodes_in_ranges(
    conn: Connection, ranges: Sequence[tuple[int, int, int]]
) -> dict[NodeKey, bytes]:
    """The stored nodes of ``(level, first idx, last idx)`` ranges, in one query."""
    conditions = [
        and_(log_nodes.c.level == level, log_nodes.c.idx.between(first, last))
        for level, first, last in ranges
    ]
    rows = conn.execute(select(log_nodes).where(or_(*conditions)))
    return {(row.level, row.idx): bytes(row.hash) for row in rows}


def node_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(log_nodes)).scalar_one())


# --- signed heads ----------------------------------------------------------------------------


def insert_head(conn: Connection, head: dict[str, Any]) -> None:
    conn.execute(tree_heads.insert().values(**head))


def head_at(conn: Connection, size: int) -> RowMapping | None:
    """The ``tree_heads`` row of ``size``, if a head was signed for it."""
    return (
        conn.execute(select(tree_heads).where(tree_heads.c.size == size)).mappings().one_or_none()
    )


def latest_head(conn: Connection) -> RowMapping | None:
    """The ``tree_heads`` row of the largest size, or None before the first head."""
    return (
        conn.execute(select(tree_heads).order_by(tree_heads.c.size.desc()).limit(1))
        .mappings()
        .first()
    )


def heads_between(conn: Connection, first: int, last: int) -> dict[int, RowMapping]:
    """The ``tree_heads`` rows of sizes ``first`` to ``last`` (both included), by size."""
    rows = conn.execute(select(tree_heads).where(tree_heads.c.size.between(first, last)))
    return {int(row.size): row for row in rows.mappings()}


def smallest_head_above(conn: Connection, size: int) -> int | None:
    """The smallest size above ``size`` a head was signed for."""
    beyond = conn.execute(
        select(func.min(tree_heads.c.size)).where(tree_heads.c.size > size)
    ).scalar()
    return None if beyond is None else int(beyond)
