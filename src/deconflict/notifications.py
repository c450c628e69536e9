"""Notifications: who is told of a change, their inboxes, and acknowledgments.

When a declaration is created, changed or withdrawn, every other party that can see it and is
affected gets one notification: because it owns a conflicting declaration (before or after the
change), because a subscription of its own is touched, or because the policy broadcasts the
kind to its role, in that order of precedence. Each recipient's notifications are numbered
1, 2, 3, … (``seq``) without gaps, since they are only written inside the serialised write
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from deconflict import entries
from deconflict.clock import format_time, format_timestamp, parse_time
from deconflict.commitments import new_salt
from deconflict.conflicts import Found, Subject
from deconflict.deployment import Deployment, Write
from deconflict.errors import Forbidden, InvalidRequest, NotFound
from deconflict.parties import Party, new_id
from deconflict.policy import Policy
from deconflict.storage import log_store
from deconflict.storage.schema import declarations, log_entries, notifications, parties
from deconflict.subscriptions import subscribers_touched
from deconflict.volumes import Volume

MAX_INBOX_PAGE = 1000


def notification_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "seq": row["seq"],
        "created_at": row["created_at"],
        "change": row["change"],
        "reason": row["reason"],
        "declaration": {
            "id": row["declaration_id"],
            "kind": row["declaration_kind"],
            "owner": row["declaration_owner"],
            "version": row["declaration_version"],
        },
        "conflicts": json.loads(row["conflicts"]),
        "late_notice": bool(row["late_notice"]),
        "delivered_at": row["delivered_at"],
        "acknowledged_at": row["acknowledged_at"],
        "comment": row["ack_comment"],
    }


def notify_change(
    write: Write,
    policy: Policy,
    subject: Subject,
    *,
    change: str,
    found: list[Found],
    before: list[Found],
    late_notice: bool,
    previous_volumes: Sequence[Volume],
) -> list[str]:
    """Create the notifications of one change; returns their ids."""
    assert subject.id is not None
    conflict_owners = {f.other.owner for f in [*found, *before]}
    subscribers = subscribers_touched(
        write.conn, subject.kind, [*subject.volumes, *previous_volumes], exclude=subject.owner
    )
    recipients = write.conn.execute(
        select(parties.c.id, parties.c.role, parties.c.webhook_url)
        .where(parties.c.revoked_at.is_(None), parties.c.id != subject.owner)
        .order_by(parties.c.created_at, parties.c.id)
    ).mappings()
    created: list[str] = []
    for recipient in recipients:
        party_id, role = recipient["id"], recipient["role"]
        if not policy.visible_to(party_id, role, subject.kind, subject.owner):
            continue
        if party_id in conflict_owners:
            reason = "conflict"
        elif party_id in subscribers:
            reason = "subscription"
        elif policy.broadcast_to(role, subject.kind):
            reason = "broadcast"
        else:
            continue
        shown = [
            f.to_json()
            for f in found
            if policy.visible_to(party_id, role, f.other.kind, f.other.owner)
        ]
        created.append(
            _create(
                write,
                party_id,
                recipient["webhook_url"],
                subject,
                change,
                reason,
                shown,
                late_notice,
            )
        )
    return created


def _create(
    write: Write,
    recipient: str,
    webhook_url: str | None,
    subject: Subject,
    change: str,
    reason: str,
    conflicts: list[dict[str, Any]],
    late_notice: bool,
) -> str:
    seq = (
        write.conn.execute(
            select(func.coalesce(func.max(notifications.c.seq), 0)).where(
                notifications.c.recipient == recipient
            )
        ).scalar_one()
        + 1
    )
    row = {
        "id": new_id("ntf"),
        "recipient": recipient,
        "seq": seq,
        "created_at": write.at,
        "change": change,
        "reason": reason,
        "declaration_id": subject.id,
        "declaration_kind": subject.kind,
        "declaration_owner": subject.owner,
        "declaration_version": subject.version,
        "conflicts": json.dumps(conflicts),
        "conflicts_salt": new_salt(),
        "late_notice": late_notice,
        "webhook_attempts": 0,
        "webhook_next_at": write.at if webhook_url else None,
    }
    write.conn.execute(notifications.insert().values(**row))
    stored = _row(write.conn, row["id"])
    entry = entries.notification_created_entry(stored)
    write.journal.append(entry, entry_type="notification.created", subject=row["id"])
    return str(row["id"])


def _row(conn: Connection, notification_id: str) -> Any:
    return (
        conn.execute(select(notifications).where(notifications.c.id == notification_id))
        .mappings()
        .one()
    )


def mark_delivered(write: Write, notification_id: str, via: str) -> bool:
    """Record the first delivery of a notification; False when it was delivered already."""
    result = write.conn.execute(
        update(notifications)
        .where(notifications.c.id == notification_id, notifications.c.delivered_at.is_(None))
        .values(delivered_at=write.at, delivered_via=via)
    )
    if result.rowcount == 0:
        return False
    entry = entries.notification_delivered_entry(_row(write.conn, notification_id))
    write.journal.append(entry, entry_type="notification.delivered", subject=notification_id)
    return True


def _page(conn: Connection, party: Party, after: int, limit: int) -> list[Any]:
    return list(
        conn.execute(
            select(notifications)
            .where(notifications.c.recipient == party.id, notifications.c.seq > after)
            .order_by(notifications.c.seq)
            .limit(limit)
        ).mappings()
    )


def read_inbox(
    deployment: Deployment, party: Party, *, after: int, limit: int, via: str = "inbox"
) -> dict[str, Any]:
    """The caller's notifications after ``seq``, oldest first; marks them delivered."""
    if after < 0:
        raise InvalidRequest("after must be 0 or more", field="after")
    if not 1 <= limit <= MAX_INBOX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_INBOX_PAGE}", field="limit")
    with deployment.db.read() as conn:
        rows = _page(conn, party, after, limit)
    if any(row["delivered_at"] is None for row in rows):
        with deployment.writing() as write:
            for row in rows:
                if row["delivered_at"] is None:
                    mark_delivered(write, row["id"], via)
            rows = _page(write.conn, party, after, limit)
    last_seq = rows[-1]["seq"] if rows else after
    return {"notifications": [notification_json(r) for r in rows], "last_seq": last_seq}


def acknowledge(
    deployment: Deployment, party: Party, notification_id: str, comment: str
) -> dict[str, Any]:
    """The recipient's "received and understood"; a second acknowledgment changes nothing."""
    with deployment.writing() as write:
        row = (
            write.conn.execute(select(notifications).where(notifications.c.id == notification_id))
            .mappings()
            .one_or_none()
        )
        # Someone else's notification does not exist for the caller.
        if row is None or row["recipient"] != party.id:
            raise NotFound(f"no notification {notification_id}")
        if row["acknowledged_at"] is None:
            # Acknowledging proves receipt, whether or not the inbox was read.
            mark_delivered(write, notification_id, "ack")
            write.conn.execute(
                update(notifications)
                .where(notifications.c.id == notification_id)
                .values(acknowledged_at=write.at, ack_comment=comment, ack_salt=new_salt())
            )
            entry = entries.notification_acknowledged_entry(_row(write.conn, notification_id))
            index = write.journal.append(
                entry, entry_type="notification.acknowledged", subject=notification_id
            )
            receipt = write.journal.receipt(index)
        else:
            receipt = existing_receipt(write.conn, "notification.acknowledged", notification_id)
        return {
            "notification": notification_json(_row(write.conn, notification_id)),
            "receipt": receipt,
        }


def existing_receipt(conn: Connection, entry_type: str, subject: str) -> dict[str, Any]:
    """A receipt for an entry logged earlier, under the latest signed head."""
    entry = conn.execute(
        select(log_entries.c.idx, log_entries.c.leaf_hash).where(
            log_entries.c.entry_type == entry_type, log_entries.c.subject == subject
        )
    ).one()
    head = log_store.latest_head(conn)
    return {"index": entry.idx, "leaf_hash": bytes(entry.leaf_hash).hex(), "tree_head": head}


def is_overdue(row: Any, deadline: timedelta, now: datetime) -> bool:
    """Not acknowledged within the policy's deadline after the notification was created."""
    return row["acknowledged_at"] is None and parse_time(row["created_at"]) + deadline < now


def _delivery_json(row: Any, deadline: timedelta, now: datetime) -> dict[str, Any]:
    return {
        "party": row["recipient"],
        "notification_id": row["id"],
        "version": row["declaration_version"],
        "change": row["change"],
        "reason": row["reason"],
        "created_at": row["created_at"],
        "delivered_at": row["delivered_at"],
        "acknowledged_at": row["acknowledged_at"],
        "overdue": is_overdue(row, deadline, now),
        "due_at": format_time(parse_time(row["created_at"]) + deadline),
    }


def deliveries(deployment: Deployment, party: Party, declaration_id: str) -> list[dict[str, Any]]:
    """Per recipient, when each notification of a declaration was delivered and acknowledged."""
    with deployment.db.read() as conn:
        policy = deployment.policy(conn)
        declaration = conn.execute(
            select(declarations.c.kind, declarations.c.owner).where(
                declarations.c.id == declaration_id
            )
        ).one_or_none()
        if declaration is None or not policy.visible_to(
            party.id, party.role, declaration.kind, declaration.owner
        ):
            raise NotFound(f"no declaration {declaration_id}")
        if party.role != "coordinator" and declaration.owner != party.id:
            raise Forbidden("only the owner and the coordinator see deliveries")
        rows = conn.execute(
            select(notifications)
            .where(notifications.c.declaration_id == declaration_id)
            .order_by(notifications.c.created_at, notifications.c.recipient, notifications.c.id)
        ).mappings()
        deadline, now = policy.acknowledgment_deadline(), deployment.now()
        return [_delivery_json(row, deadline, now) for row in rows]


def overdue(deployment: Deployment, party: Party) -> list[dict[str, Any]]:
    """Overdue acknowledgments: of the caller's declarations, or all for the coordinator."""
    with deployment.db.read() as conn:
        policy = deployment.policy(conn)
        deadline, now = policy.acknowledgment_deadline(), deployment.now()
        query = select(notifications).where(
            notifications.c.acknowledged_at.is_(None),
            notifications.c.created_at < format_timestamp(now - deadline),
        )
        if party.role != "coordinator":
            query = query.where(notifications.c.declaration_owner == party.id)
        rows = conn.execute(
            query.order_by(notifications.c.created_at, notifications.c.id)
        ).mappings()
        result = []
        for row in rows:
            delivery = _delivery_json(row, deadline, now)
            delivery["declaration"] = {
                "id": row["declaration_id"],
                "kind": row["declaration_kind"],
                "owner": row["declaration_owner"],
                "version": row["declaration_version"],
            }
            result.append(delivery)
        return result
