"""The SQL of notifications: inserting them, inboxes, deliveries and acknowledgments.

Rows come back as SQLAlchemy ``RowMapping``s of the whole ``notifications`` row; every write
that the record logs returns the row as stored, which is what its entry is built from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, RowMapping

from deconflict.storage import keyed
from deconflict.storage.schema import notifications


def next_seq(conn: Connection, recipient: str) -> int:
    """The ``seq`` of the recipient's next notification: 1, 2, 3, ... without gaps (the
    caller holds the write lock)."""
    last = conn.execute(
        select(func.coalesce(func.max(notifications.c.seq), 0)).where(
            notifications.c.recipient == recipient
        )
    ).scalar_one()
    return int(last) + 1


def insert(conn: Connection, values: dict[str, Any]) -> RowMapping:
    """Store a notification; returns it as stored."""
    return keyed.insert(conn, notifications, values)


def get(conn: Connection, notification_id: str) -> RowMapping:
    """The notification, which must exist."""
    return keyed.get(conn, notifications, notification_id)


def find(conn: Connection, notification_id: str) -> RowMapping | None:
    return keyed.find(conn, notifications, notification_id)


def mark_delivered(conn: Connection, notification_id: str, at: str, via: str) -> RowMapping | None:
    """Set the first delivery; returns the row as stored, or None when it was delivered
    already (or does not exist)."""
    result = conn.execute(
        update(notifications)
        .where(notifications.c.id == notification_id, notifications.c.delivered_at.is_(None))
        .values(delivered_at=at, delivered_via=via)
    )
    return None if result.rowcount == 0 else get(conn, notification_id)


def acknowledge(
    conn: Connection, notification_id: str, at: str, comment: str, salt: str
) -> RowMapping:
    """Set the acknowledgment; returns the row as stored."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id == notification_id)
        .values(acknowledged_at=at, ack_comment=comment, ack_salt=salt)
    )
    return get(conn, notification_id)


def inbox_page(conn: Connection, recipient: str, after: int, limit: int) -> list[RowMapping]:
    """The recipient's notifications with ``seq`` above ``after``, oldest first, at most
    ``limit``."""
    return list(
        conn.execute(
            select(notifications)
            .where(notifications.c.recipient == recipient, notifications.c.seq > after)
            .order_by(notifications.c.seq)
            .limit(limit)
        ).mappings()
    )


def unacknowledged_of(conn: Connection, recipient: str) -> list[RowMapping]:
    """The recipient's notifications not acknowledged yet, in ``seq`` order."""
    query = select(notifications).where(
        notifications.c.recipient == recipient, notifications.c.acknowledged_at.is_(None)
    )
    return list(conn.execute(query.order_by(notifications.c.seq)).mappings())


def of_declarations(conn: Connection, declaration_ids: Sequence[str]) -> list[RowMapping]:
    """The notifications of these declarations, by id. Read in chunks: SQLite limits the
    number of bound parameters in one statement."""
    found: list[RowMapping] = []
    for start in range(0, len(declaration_ids), 500):
        chunk = list(declaration_ids[start : start + 500])
        found += conn.execute(
            select(notifications).where(notifications.c.declaration_id.in_(chunk))
        ).mappings()
    return sorted(found, key=lambda row: str(row["id"]))


def of_declaration(
    conn: Connection, declaration_id: str, *, shown_to_owner_only: bool
) -> list[RowMapping]:
    """The notifications of a declaration by creation, recipient and id; with
    ``shown_to_owner_only``, those its owner is shown (an ``owner_reason``)."""
    query = select(notifications).where(notifications.c.declaration_id == declaration_id)
    if shown_to_owner_only:
        query = query.where(notifications.c.owner_reason.is_not(None))
    order = (notifications.c.created_at, notifications.c.recipient, notifications.c.id)
    return list(conn.execute(query.order_by(*order)).mappings())


def unacknowledged_before(
    conn: Connection, before: str, *, owner: str | None = None
) -> list[RowMapping]:
    """The notifications created before ``before`` and not acknowledged, oldest first; with
    ``owner``, only those of that party's declarations that it is shown."""
    query = select(notifications).where(
        notifications.c.acknowledged_at.is_(None), notifications.c.created_at < before
    )
    if owner is not None:
        query = query.where(
            notifications.c.declaration_owner == owner,
            notifications.c.owner_reason.is_not(None),
        )
    order = (notifications.c.created_at, notifications.c.id)
    return list(conn.execute(query.order_by(*order)).mappings())
