"""The SQL of the webhook outbox: the ``webhook_*`` columns of ``notifications``.

A delivery is due when its ``webhook_next_at`` has come, its recipient still has a webhook
and no unexpired lease holds it; a lease is taken in a write transaction, so several
processes never send the same attempt.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.engine import Connection

from deconflict.storage.schema import notifications, parties


def _due(now: str, limit: int) -> Select[Any]:
    return (
        select(notifications, parties.c.webhook_url, parties.c.webhook_secret)
        .join(parties, parties.c.id == notifications.c.recipient)
        .where(
            notifications.c.webhook_next_at.is_not(None),
            notifications.c.webhook_next_at <= now,
            parties.c.webhook_url.is_not(None),
            or_(
                notifications.c.webhook_lease_until.is_(None),
                notifications.c.webhook_lease_until < now,
            ),
        )
        .order_by(notifications.c.webhook_next_at)
        .limit(limit)
    )


def any_due(conn: Connection, now: str) -> bool:
    """Whether a delivery is due at ``now`` (a cheap read, without the write lock)."""
    return conn.execute(_due(now, 1)).first() is not None


def claim_due(conn: Connection, now: str, limit: int, lease_until: str) -> list[dict[str, Any]]:
    """Lease up to ``limit`` deliveries due at ``now`` until ``lease_until``; each is its
    notification row with the recipient's ``webhook_url`` and ``webhook_secret``."""
    rows = conn.execute(_due(now, limit)).mappings().all()
    for row in rows:
        conn.execute(
            update(notifications)
            .where(notifications.c.id == row["id"])
            .values(webhook_lease_until=lease_until)
        )
    return [dict(row) for row in rows]


def settle(
    conn: Connection,
    notification_id: str,
    *,
    attempts: int,
    next_at: str | None,
    last_error: str | None,
) -> None:
    """Record an attempt: how many so far, when to try next (None: never) and its error."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id == notification_id)
        .values(
            webhook_attempts=attempts,
            webhook_lease_until=None,
            webhook_next_at=next_at,
            webhook_last_error=last_error,
        )
    )


def release(conn: Connection, notification_ids: list[str]) -> None:
    """Hand leased deliveries back for the next pass."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id.in_(notification_ids))
        .values(webhook_lease_until=None)
    )
