"""Rows for the storage tests: an empty schema on each backend, and minimal rows to fill it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection

from deconflict.storage import notifications, parties
from deconflict.storage.database import Database
from deconflict.storage.schema import metadata


@contextmanager
def empty_schema(db_url: str) -> Iterator[Database]:
    """The current schema, created without migrations, on ``db_url``."""
    db = Database(db_url)
    metadata.create_all(db.engine)
    try:
        yield db
    finally:
        db.dispose()


def party(
    conn: Connection, party_id: str, *, at: str, role: str = "operator", **values: Any
) -> Any:
    return parties.insert(
        conn,
        {
            "id": party_id,
            "name": party_id.title(),
            "role": role,
            "token_hash": f"hash-of-{party_id}",
            "created_at": at,
            **values,
        },
    )


def notification(
    conn: Connection, notification_id: str, recipient: str, *, at: str, **values: Any
) -> Any:
    """A notification of ``recipient``, numbered next in its inbox."""
    return notifications.insert(
        conn,
        {
            "id": notification_id,
            "recipient": recipient,
            "seq": notifications.next_seq(conn, recipient),
            "created_at": at,
            "change": "created",
            "reason": "conflict",
            "owner_reason": "conflict",
            "declaration_id": "dcl_1",
            "declaration_kind": "operation",
            "declaration_owner": "pty_owner",
            "declaration_version": "v1",
            "conflicts": "[]",
            "conflicts_salt": "salt",
            "late_notice": False,
            "webhook_attempts": 0,
            **values,
        },
    )
