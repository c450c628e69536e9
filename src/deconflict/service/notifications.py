"""Notifications: who is told of a change, their inboxes, and acknowledgments.

When a declaration is created, changed or withdrawn, every other party that can see it and is
affected gets one notification: because it owns a conflicting declaration (before or after the
change), because a subscription of its own is touched, or because the policy broadcasts the
kind to its role, in that order of precedence. Each recipient's notifications are numbered
1, 2, 3, … (``seq``) without gaps, since they are only written inside the serialised write
transaction.

What the declaration's owner is shown of them (deliveries, overdue) is only what it could
know from what it sees: a recipient's reason is ``conflict`` when the recipient owns a
conflicting declaration that the owner can see, ``broadcast`` when the (public) policy
broadcasts the kind to the recipient's role, and otherwise the owner is not shown that
notification at all. A recipient there only because of an operation the owner may not see,
or of its own subscription (which only it sees), would otherwise tell the owner that such a
thing exists nearby: probing with sites would locate hidden operations. The coordinator, who
sees everything, is shown every notification with its true reason; the recipient sees its own.
The owner's reason is decided when the notification is made, under the policy then in force
(``notifications.owner_reason``), and kept with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from deconflict.clock import format_time, format_timestamp, parse_time
from deconflict.engine.index import Found, Subject
from deconflict.errors import Forbidden, InvalidRequest, NotFound
from deconflict.policy import Policy
from deconflict.record import entries, log_store
from deconflict.record.commitments import new_salt
from deconflict.service.deployment import Deployment, Write
from deconflict.service.parties import Party, new_id
from deconflict.service.subscriptions import subscribers_touched
from deconflict.storage.schema import declarations, log_entries, notifications, parties
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
    # The conflicts the declaration's owner can see: the only ones it may be told were why.
    seen_by_owner = {
        f.other.owner
        for f in [*found, *before]
        if policy.visible_to(subject.owner, subject.owner_role, f.other.kind, f.other.owner)
    }
    subscribers = subscribers_touched(
        write.conn, subject.kind, [*subject.volumes, *previous_volumes], exclude=subject.owner
    )
    recipients = write.conn.execute(
        select(parties.c.id, parties.c.role, parties.c.webhook_url)
        .where(parties.c.revoked_at.is_(None), parties.c.id != subject.owner)
        .order_by(parties.c.created_at, parties.c.id)
    ).mappings()
    created: list[str] = []
    could_be_told = 0
    for recipient in recipients:
        party_id, role = recipient["id"], recipient["role"]
        could_be_told += 1
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
                (reason, owner_reason(policy, role, subject.kind, party_id in seen_by_owner)),
                shown,
                late_notice,
            )
        )
    _pad(write, subject, could_be_told - len(created))
    return created


def _pad(write: Write, subject: Subject, count: int) -> None:
    """Log one sealed padding entry for each party (but the owner) that was not told of the
    change, so that every change logs one entry per party but its owner, whatever its kind:
    a number anyone can work out from the parties. Otherwise the count of sealed entries a
    change logs, in the public log and in the writer's own receipt (its head's size against
    its index), would tell who was notified because of what the writer may not see (a probe
    site would learn that a hidden operation overlaps it), and the count would tell an
    operation (seen by few) from a site (seen by all)."""
    version = {"declaration_id": subject.id, "version": subject.version, "at": write.at}
    write.journal.append_all(
        [
            (
                entries.padding_entry(version, slot),
                entries.padding_subject(str(subject.id), subject.version, slot),
            )
            for slot in range(count)
        ]
    )


def owner_reason(
    policy: Policy, recipient_role: str, kind: str, conflict_seen_by_owner: bool
) -> str | None:
    """The reason the declaration's owner is shown for a recipient, or None to show it none
    (see the module's docstring): derived only from what the owner sees."""
    if conflict_seen_by_owner:
        return "conflict"
    if policy.broadcast_to(recipient_role, kind):
        return "broadcast"
    return None


def _create(
    write: Write,
    recipient: str,
    webhook_url: str | None,
    subject: Subject,
    change: str,
    reasons: tuple[str, str | None],
    conflicts: list[dict[str, Any]],
    late_notice: bool,
) -> str:
    """One notification and its record entry. ``reasons`` is the true reason and the one the
    declaration's owner is shown (None: the owner is not shown this notification)."""
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
        "reason": reasons[0],
        "owner_reason": reasons[1],
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
    write.journal.append(entry, subject=row["id"])
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
    write.journal.append(entry, subject=notification_id)
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
            index = write.journal.append(entry, subject=notification_id)
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


def _delivery_json(row: Any, deadline: timedelta, now: datetime, reason: str) -> dict[str, Any]:
    return {
        "party": row["recipient"],
        "notification_id": row["id"],
        "version": row["declaration_version"],
        "change": row["change"],
        "reason": reason,
        "created_at": row["created_at"],
        "delivered_at": row["delivered_at"],
        "acknowledged_at": row["acknowledged_at"],
        "overdue": is_overdue(row, deadline, now),
        "due_at": format_time(parse_time(row["created_at"]) + deadline),
    }


def _shown_reason(party: Party, row: Any) -> str | None:
    """The reason ``party`` (the coordinator, or the declaration's owner) is shown for a
    notification; None when it is not shown it (the module's docstring says why)."""
    if party.role == "coordinator":
        return str(row["reason"])
    return None if row["owner_reason"] is None else str(row["owner_reason"])


def deliveries(deployment: Deployment, party: Party, declaration_id: str) -> list[dict[str, Any]]:
    """Per recipient, when each notification of a declaration was delivered and acknowledged:
    all of them for the coordinator, those the owner could know of for the owner."""
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
        query = select(notifications).where(notifications.c.declaration_id == declaration_id)
        if party.role != "coordinator":
            query = query.where(notifications.c.owner_reason.is_not(None))
        rows = conn.execute(
            query.order_by(
                notifications.c.created_at, notifications.c.recipient, notifications.c.id
            )
        ).mappings()
        deadline, now = policy.acknowledgment_deadline(), deployment.now()
        return [
            _delivery_json(row, deadline, now, reason)
            for row in rows
            if (reason := _shown_reason(party, row)) is not None
        ]


def overdue(deployment: Deployment, party: Party) -> list[dict[str, Any]]:
    """Overdue acknowledgments: of the caller's declarations (those it could know of), or all
    for the coordinator."""
    with deployment.db.read() as conn:
        policy = deployment.policy(conn)
        deadline, now = policy.acknowledgment_deadline(), deployment.now()
        query = select(notifications).where(
            notifications.c.acknowledged_at.is_(None),
            notifications.c.created_at < format_timestamp(now - deadline),
        )
        if party.role != "coordinator":
            query = query.where(
                notifications.c.declaration_owner == party.id,
                notifications.c.owner_reason.is_not(None),
            )
        rows = conn.execute(
            query.order_by(notifications.c.created_at, notifications.c.id)
        ).mappings()
        result = []
        for row in rows:
            reason = _shown_reason(party, row)
            if reason is None:
                continue
            delivery = _delivery_json(row, deadline, now, reason)
            delivery["declaration"] = {
                "id": row["declaration_id"],
                "kind": row["declaration_kind"],
                "owner": row["declaration_owner"],
                "version": row["declaration_version"],
            }
            result.append(delivery)
        return result


NOTIFICATION_ENTRY_TYPES = (
    "notification.created",
    "notification.delivered",
    "notification.acknowledged",
)


def notification_opening(
    deployment: Deployment, party: Party, notification_id: str
) -> dict[str, Any]:
    """What the recipient (or the coordinator) shows an inquiry to prove it was notified of
    exactly this, and when it received and acknowledged it: each of the notification's record
    entries with its leaf and the opening of its seal, and the openings of the conflicts and
    the comment it commits to.

    Not for the declaration's owner: the entries name the true reason and the recipient's
    ``seq``, which may depend on what the owner may not see.
    """
    with deployment.db.read() as conn:
        row = _row_or_none(conn, notification_id)
        if row is None or (party.role != "coordinator" and row["recipient"] != party.id):
            raise NotFound(f"no notification {notification_id}")
        logged = conn.execute(
            select(log_entries.c.idx, log_entries.c.entry_type, log_entries.c.leaf)
            .where(
                log_entries.c.subject == notification_id,
                log_entries.c.entry_type.in_(NOTIFICATION_ENTRY_TYPES),
            )
            .order_by(log_entries.c.idx)
        ).all()
        comment = row["ack_comment"]
        return {
            "notification_id": notification_id,
            "entries": [
                {
                    "type": entry.entry_type,
                    "log_index": int(entry.idx),
                    "leaf": entry.leaf,
                    "seal": entries.seal_opening(conn, int(entry.idx)),
                }
                for entry in logged
            ],
            "conflicts": {"value": json.loads(row["conflicts"]), "salt": row["conflicts_salt"]},
            "comment": None if comment is None else {"value": comment, "salt": row["ack_salt"]},
        }


def _row_or_none(conn: Connection, notification_id: str) -> Any:
    return (
        conn.execute(select(notifications).where(notifications.c.id == notification_id))
        .mappings()
        .one_or_none()
    )


def unacknowledged(deployment: Deployment, party: Party) -> list[dict[str, Any]]:
    """The party's notifications it has not acknowledged, oldest first (``notification_json``).
    Unlike ``read_inbox`` this delivers nothing: it is what the party knows from elsewhere
    (its webhook), as a scenario's acknowledge step does."""
    with deployment.db.read() as conn:
        rows = conn.execute(
            select(notifications)
            .where(notifications.c.recipient == party.id, notifications.c.acknowledged_at.is_(None))
            .order_by(notifications.c.seq)
        ).mappings()
        return [notification_json(row) for row in rows]
