"""The queries of ``deconflict verify --db`` across tables (``deconflict.record.fsck``).

The log's own rows are read through ``deconflict.storage.log``; here is what crosses it with
the other tables: rows that must be logged and are not, entries logged twice, the current
state of each declaration beside its latest logged version, and every row ``serve`` loads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import ColumnElement, Table, and_, cast, exists, func, literal, or_, select
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.types import String

from deconflict.storage.schema import (
    declaration_versions,
    declarations,
    log_entries,
    notification_responses,
    notifications,
    parties,
)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection in one read transaction: on PostgreSQL, one snapshot for the whole audit
    (REPEATABLE READ), even while the service keeps writing."""
    with engine.connect() as base:
        conn = base
        if engine.dialect.name == "postgresql":
            conn = base.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def version_not_logged(conn: Connection) -> tuple[str, str] | None:
    """A declaration version (its subject "<id>/<version>" and change) with no entry of its
    type at its ``log_index``."""
    dv = declaration_versions
    subject = dv.c.declaration_id + literal("/") + dv.c.version
    logged_at_its_index = exists().where(
        log_entries.c.subject == subject,
        log_entries.c.entry_type == literal("declaration.") + dv.c.change,
        log_entries.c.idx == dv.c.log_index,
    )
    row = conn.execute(
        select(subject.label("subject"), dv.c.change).where(~logged_at_its_index).limit(1)
    ).first()
    return None if row is None else (str(row.subject), str(row.change))


def row_not_logged(
    conn: Connection, entry_type: str, table: Table, condition: ColumnElement[bool] | None
) -> str | None:
    """The id of a ``table`` row (meeting ``condition``) with no ``entry_type`` entry."""
    logged = exists().where(
        log_entries.c.subject == table.c.id, log_entries.c.entry_type == entry_type
    )
    query = select(table.c.id).where(~logged)
    if condition is not None:
        query = query.where(condition)
    missing = conn.execute(query.limit(1)).scalar()
    return None if missing is None else str(missing)


def response_not_logged(conn: Connection) -> str | None:
    """A later response ("<notification id>/<number>", number 2 on) with no
    ``notification.responded`` entry; number 1 is the acknowledgment's, whose entry holds it."""
    r = notification_responses
    subject = r.c.notification_id + literal("/") + cast(r.c.number, String)
    logged = exists().where(
        log_entries.c.subject == subject, log_entries.c.entry_type == "notification.responded"
    )
    missing = conn.execute(
        select(subject.label("subject")).where(r.c.number >= 2, ~logged).limit(1)
    ).scalar()
    return None if missing is None else str(missing)


def response_not_current(conn: Connection) -> str | None:
    """The id of a notification whose current response (``response``, ``response_comment``,
    ``responded_at``) is not its latest response row, or that has one without any."""
    r, n = notification_responses, notifications
    latest = (
        select(r.c.notification_id, func.max(r.c.number).label("number"))
        .group_by(r.c.notification_id)
        .subquery()
    )
    last = r.alias("last")
    joined = n.outerjoin(latest, latest.c.notification_id == n.c.id).outerjoin(
        last, and_(last.c.notification_id == n.c.id, last.c.number == latest.c.number)
    )
    differs = or_(
        n.c.response.is_distinct_from(last.c.response),
        n.c.response_comment.is_distinct_from(last.c.comment),
        n.c.responded_at.is_distinct_from(last.c.at),
    )
    found = conn.execute(select(n.c.id).select_from(joined).where(differs).limit(1)).scalar()
    return None if found is None else str(found)


def logged_twice(conn: Connection) -> tuple[str, str] | None:
    """An ``(entry_type, subject)`` logged more than once."""
    row = conn.execute(
        select(log_entries.c.entry_type, log_entries.c.subject)
        .group_by(log_entries.c.entry_type, log_entries.c.subject)
        .having(func.count() > 1)
        .limit(1)
    ).first()
    return None if row is None else (str(row.entry_type), str(row.subject))


def current_beside_latest(conn: Connection, compared: Sequence[str]) -> Iterator[RowMapping]:
    """Each declaration by id: ``id``, ``latest_version`` (None when no version is logged),
    and for each column of ``compared`` its ``current_<name>`` and ``logged_<name>`` (in its
    latest logged version, by log order). Streamed (a server-side cursor on PostgreSQL): a
    deployment may hold millions."""
    dv, d = declaration_versions, declarations
    latest = (
        select(dv.c.declaration_id, func.max(dv.c.log_index).label("log_index"))
        .group_by(dv.c.declaration_id)
        .subquery()
    )
    joined = d.outerjoin(latest, latest.c.declaration_id == d.c.id).outerjoin(
        dv, and_(dv.c.declaration_id == d.c.id, dv.c.log_index == latest.c.log_index)
    )
    columns = [d.c.id, dv.c.version.label("latest_version")]
    columns += [d.c[name].label(f"current_{name}") for name in compared]
    columns += [dv.c[name].label(f"logged_{name}") for name in compared]
    query = select(*columns).select_from(joined).order_by(d.c.id)
    with conn.execute(query.execution_options(yield_per=500)).mappings() as rows:
        yield from rows


def version_without_declaration(conn: Connection) -> str | None:
    """The id of a declaration with logged versions but no current row."""
    dv, d = declaration_versions, declarations
    orphan = conn.execute(
        select(dv.c.declaration_id).where(~exists().where(d.c.id == dv.c.declaration_id)).limit(1)
    ).scalar()
    return None if orphan is None else str(orphan)


def declarations_to_load(conn: Connection, batch: int) -> Iterator[list[RowMapping]]:
    """Every declaration row with its owner's ``owner_role``, in ``change_seq`` order, in
    lists of ``batch``: what ``serve`` loads into its conflict index. Streamed (closed early
    too: a server-side cursor on PostgreSQL)."""
    query = (
        select(declarations, parties.c.role.label("owner_role"))
        .join(parties, parties.c.id == declarations.c.owner)
        .where(declarations.c.change_seq > 0)
        .order_by(declarations.c.change_seq)
    )
    with conn.execute(query.execution_options(yield_per=batch)).mappings() as rows:
        while chunk := rows.fetchmany(batch):
            yield list(chunk)
