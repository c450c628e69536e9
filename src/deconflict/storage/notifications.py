"""The SQL of notifications: inserting them, inboxes, deliveries, acknowledgments and
responses, and the claims of the overdue escalation.

Rows come back as SQLAlchemy ``RowMapping``s of the whole ``notifications`` row; every write
that the record logs returns the row as stored, which is what its entry is built from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.engine import Connection, RowMapping

from deconflict.storage import keyed
from deconflict.storage.schema import notification_responses, notifications

# Built once: every notification asks it, and building a statement costs more than
# SQLite takes to answer it.
_LAST_SEQ = select(func.coalesce(func.max(notifications.c.seq), 0)).where(
    notifications.c.recipient == bindparam("recipient")
)


def next_seq(conn: Connection, recipient: str) -> int:
    """The ``seq`` of the recipient's next notification: 1, 2, 3, ... without gaps (the
    caller holds the write lock)."""
    last = conn.execute(_LAST_SEQ, {"recipient": recipient}).scalar_one()
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
    conn: Connection,
    notification_id: str,
    at: str,
    comment: str,
    salt: str,
    *,
    response: str | None = None,
) -> RowMapping:
    """Set the acknowledgment and, with ``response``, make it response number 1 (the current
    one; its comment and salt are the acknowledgment's); returns the row as its record entry
    reads it (``acknowledged_row``)."""
    values: dict[str, Any] = {"acknowledged_at": at, "ack_comment": comment, "ack_salt": salt}
    if response is not None:
        values |= {"response": response, "response_comment": comment, "responded_at": at}
        conn.execute(
            notification_responses.insert().values(
                notification_id=notification_id,
                number=1,
                response=response,
                comment=comment,
                salt=salt,
                at=at,
            )
        )
    conn.execute(
        update(notifications).where(notifications.c.id == notification_id).values(**values)
    )
    return acknowledged_row(conn, notification_id)


def acknowledged_row(conn: Connection, notification_id: str) -> RowMapping:
    """The notification with its first response beside it (``first_response``,
    ``first_comment``, ``first_salt``; null when it was acknowledged before responses
    existed): what the ``notification.acknowledged`` entry is built from, which must not
    change when a later response becomes the current one."""
    first = notification_responses.alias("first")
    query = (
        select(
            notifications,
            first.c.response.label("first_response"),
            first.c.comment.label("first_comment"),
            first.c.salt.label("first_salt"),
        )
        .select_from(
            notifications.outerjoin(
                first, and_(first.c.notification_id == notifications.c.id, first.c.number == 1)
            )
        )
        .where(notifications.c.id == notification_id)
    )
    found = conn.execute(query).mappings().one_or_none()
    if found is None:
        raise LookupError(f"no notifications row {notification_id!r}")
    return found


def last_response_number(conn: Connection, notification_id: str) -> int:
    """The number of the notification's latest response; 0 when it has none."""
    last = conn.execute(
        select(func.coalesce(func.max(notification_responses.c.number), 0)).where(
            notification_responses.c.notification_id == notification_id
        )
    ).scalar_one()
    return int(last)


def add_response(
    conn: Connection,
    notification_id: str,
    number: int,
    response: str,
    comment: str,
    salt: str,
    at: str,
) -> RowMapping:
    """Store a later response and make it the notification's current one; returns it as its
    record entry reads it (``response_row``)."""
    conn.execute(
        notification_responses.insert().values(
            notification_id=notification_id,
            number=number,
            response=response,
            comment=comment,
            salt=salt,
            at=at,
        )
    )
    conn.execute(
        update(notifications)
        .where(notifications.c.id == notification_id)
        .values(response=response, response_comment=comment, responded_at=at)
    )
    return response_row(conn, response_subject(notification_id, number))


def response_subject(notification_id: str, number: int) -> str:
    """How the record names a response: ``"<notification id>/<number>"``."""
    return f"{notification_id}/{number}"


def response_row(conn: Connection, subject: str) -> RowMapping:
    """The response named ``"<notification id>/<number>"``, with its notification's
    ``recipient``; ``LookupError`` when there is none, ``ValueError`` for a malformed name."""
    notification_id, _, number = subject.rpartition("/")
    if not (number.isascii() and number.isdigit()):
        raise ValueError(f"a response subject ends in /<number>, not {subject!r}")
    r = notification_responses
    found = (
        conn.execute(
            select(r, notifications.c.recipient)
            .join(notifications, notifications.c.id == r.c.notification_id)
            .where(r.c.notification_id == notification_id, r.c.number == int(number))
        )
        .mappings()
        .one_or_none()
    )
    if found is None:
        raise LookupError(f"no notification_responses row {subject!r}")
    return found


def responses_of(conn: Connection, notification_id: str) -> list[RowMapping]:
    """Every response of the notification, by number."""
    r = notification_responses
    query = select(r).where(r.c.notification_id == notification_id).order_by(r.c.number)
    return list(conn.execute(query).mappings())


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
    ``owner``, only those of that party's declarations that it is shown. Escalations (reason
    ``overdue``) are left out: their own lateness is not an overdue acknowledgment to chase."""
    query = select(notifications).where(
        notifications.c.acknowledged_at.is_(None),
        notifications.c.created_at < before,
        notifications.c.reason != "overdue",
    )
    if owner is not None:
        query = query.where(
            notifications.c.declaration_owner == owner,
            notifications.c.owner_reason.is_not(None),
        )
    order = (notifications.c.created_at, notifications.c.id)
    return list(conn.execute(query.order_by(*order)).mappings())


def unescalated_before(conn: Connection, before: str, *, limit: int) -> list[RowMapping]:
    """At most ``limit`` notifications created before ``before``, not acknowledged and not
    escalated yet, oldest first; escalations themselves (reason ``overdue``) are never
    escalated again. Served by the partial index ``ix_notifications_unescalated``."""
    n = notifications
    query = (
        select(n)
        .where(
            n.c.acknowledged_at.is_(None),
            n.c.escalated_at.is_(None),
            n.c.created_at < before,
            n.c.reason != "overdue",
        )
        .order_by(n.c.created_at, n.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).mappings())


def mark_escalated(conn: Connection, notification_id: str, at: str) -> bool:
    """Claim the escalation of a late notification; False when it was escalated (or
    acknowledged) already. The condition makes the claim exactly-once even without the
    write lock; under it (``Deployment.writing``), the claim commits with the overdue
    notifications it makes, or neither does."""
    n = notifications
    result = conn.execute(
        update(n)
        .where(n.c.id == notification_id, n.c.escalated_at.is_(None), n.c.acknowledged_at.is_(None))
        .values(escalated_at=at)
    )
    return result.rowcount == 1
