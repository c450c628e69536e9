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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from deconflict.clock import format_timestamp, parse_time
from deconflict.engine.rule import Found, Subject
from deconflict.errors import Forbidden, InvalidRequest, NotFound
from deconflict.policy import Policy
from deconflict.record import entries
from deconflict.service import notice
from deconflict.service.deployment import Deployment, Write
from deconflict.service.parties import Party
from deconflict.service.protection import alert_json, alert_protected, declaration_shown
from deconflict.service.subscriptions import subscribers_touched
from deconflict.storage import declarations as declaration_rows
from deconflict.storage import log, notifications, parties
from deconflict.volumes import Volume

MAX_INBOX_PAGE = 1000


@dataclass(frozen=True)
class InboxPage:
    """Notifications of one recipient (rows as stored), and the ``seq`` to read on from."""

    notifications: list[RowMapping]
    last_seq: int


@dataclass(frozen=True)
class Delivery:
    """A notification of a declaration as the caller (its owner, or the coordinator) is
    shown it: the reason it is shown, and when its acknowledgment is due."""

    notification: RowMapping
    reason: str
    due_at: datetime
    overdue: bool


@dataclass(frozen=True)
class LoggedEntry:
    """One record entry about a notification, with the opening of its seal (None in clear)."""

    entry_type: str
    log_index: int
    leaf: str
    seal: dict[str, Any] | None


@dataclass(frozen=True)
class NotificationOpening:
    notification: RowMapping
    entries: list[LoggedEntry]
    # Every response by number (``notification_responses`` rows), whose comments the
    # acknowledged and responded entries commit to.
    responses: list[RowMapping] = field(default_factory=list)


def notification_json(row: Any) -> dict[str, Any]:
    """The notification document, built here only: the inbox, the event stream and the
    acknowledgment answer it (``deconflict.api.inbox``) and webhooks POST it (this layer, so
    that their worker can build it)."""
    return {
        "id": row["id"],
        "seq": row["seq"],
        "created_at": row["created_at"],
        "change": row["change"],
        "reason": row["reason"],
        "declaration": declaration_shown(row),  # null in a redacted protection alert
        "protection": alert_json(row),
        "conflicts": json.loads(row["conflicts"]),
        "late_notice": bool(row["late_notice"]),
        "delivered_at": row["delivered_at"],
        "acknowledged_at": row["acknowledged_at"],
        "response": current_response_name(row),
        "comment": current_comment(row),
        "responded_at": current_responded_at(row),
        "overdue": None if row["overdue"] is None else json.loads(row["overdue"]),
    }


def current_response_name(row: Any) -> str | None:
    """The current response; ``acknowledged`` for a notification acknowledged before responses
    existed, None before any acknowledgment."""
    if row["response"] is None and row["acknowledged_at"] is not None:
        return "acknowledged"
    return None if row["response"] is None else str(row["response"])


def current_responded_at(row: Any) -> str | None:
    """When the current response was given; the acknowledgment's time for a notification
    acknowledged before responses existed."""
    at = row["acknowledged_at"] if row["response"] is None else row["responded_at"]
    return None if at is None else str(at)


def current_comment(row: Any) -> str | None:
    """The comment of the current response; for a notification acknowledged before responses
    existed, the acknowledgment's."""
    comment = row["ack_comment"] if row["response"] is None else row["response_comment"]
    return None if comment is None else str(comment)


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
    justification: str | None = None,
) -> list[str]:
    """Create the notifications of one change, protection alerts included
    (``service.protection``); returns their ids."""
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
    recipients = parties.active_except(write.conn, subject.owner)
    created: list[str] = []
    told: set[str] = set()
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
            notice.create(
                write,
                recipient,
                notice.about(subject),
                change=change,
                reason=reason,
                owner_reason=owner_reason(policy, role, subject.kind, party_id in seen_by_owner),
                late_notice=late_notice,
                conflicts=shown,
            )
        )
        told.add(party_id)
    alerted = alert_protected(
        write,
        policy,
        subject,
        change=change,
        found=found,
        before=before,
        late_notice=late_notice,
        justification=justification,
    )
    # A party alerted and told nothing else stands in for its own padding entry.
    _pad(write, subject, could_be_told - len(told) - len(alerted.recipients - told))
    return created + alerted.ids


def _pad(write: Write, subject: Subject, count: int) -> None:
    """Log one sealed padding entry for each party (but the owner) that was not told of the
    change, so that every change logs one entry per party but its owner, whatever its kind:
    a number anyone can work out from the parties. Otherwise the count of sealed entries a
    change logs, in the public log and in the writer's own receipt (its head's size against
    its index), would tell who was notified because of what the writer may not see (a probe
    site would learn that a hidden operation overlaps it), and the count would tell an
    operation (seen by few) from a site (seen by all).

    A party that gets protection alerts and nothing else is not padded for (its first alert
    stands in). What remains: a party with several alerts from one write (the coordinator,
    of an operation over several protected sites), or an alert besides another notification,
    adds entries, so the count says an operation met protected declarations (docs/record.md,
    "What the public log still shows")."""
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


def mark_delivered(write: Write, notification_id: str, via: str) -> bool:
    """Record the first delivery of a notification; False when it was delivered already."""
    row = notifications.mark_delivered(write.conn, notification_id, write.at, via)
    if row is None:
        return False
    write.journal.record(entries.notification_delivered_entry, row)
    return True


def read_inbox(
    deployment: Deployment, party: Party, *, after: int, limit: int, via: str = "inbox"
) -> InboxPage:
    """The caller's notifications after ``seq``, oldest first; marks them delivered."""
    if after < 0:
        raise InvalidRequest("after must be 0 or more", field="after")
    if not 1 <= limit <= MAX_INBOX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_INBOX_PAGE}", field="limit")
    with deployment.db.read() as conn:
        rows = notifications.inbox_page(conn, party.id, after, limit)
    if any(row["delivered_at"] is None for row in rows):
        with deployment.writing() as write:
            for row in rows:
                if row["delivered_at"] is None:
                    mark_delivered(write, row["id"], via)
            rows = notifications.inbox_page(write.conn, party.id, after, limit)
    return InboxPage(rows, int(rows[-1]["seq"]) if rows else after)


def unacknowledged(deployment: Deployment, party: Party) -> list[RowMapping]:
    """The caller's notifications it has not acknowledged yet, in ``seq`` order."""
    with deployment.db.read() as conn:
        return notifications.unacknowledged_of(conn, party.id)


def of_declarations(deployment: Deployment, declaration_ids: Sequence[str]) -> list[RowMapping]:
    """Every notification of these declarations (for the coordinator's reports: the
    scenario loader's summary)."""
    with deployment.db.read() as conn:
        return notifications.of_declarations(conn, declaration_ids)


def _delivery(row: RowMapping, deadline: timedelta, now: datetime, reason: str) -> Delivery:
    due_at = parse_time(row["created_at"]) + deadline
    # Overdue: not acknowledged within the policy's deadline after it was created.
    return Delivery(row, reason, due_at, row["acknowledged_at"] is None and due_at < now)


def _shown_reason(party: Party, row: Any) -> str | None:
    """The reason ``party`` (the coordinator, or the declaration's owner) is shown for a
    notification; None when it is not shown it (the module's docstring says why)."""
    if party.role == "coordinator":
        return str(row["reason"])
    return None if row["owner_reason"] is None else str(row["owner_reason"])


def deliveries(deployment: Deployment, party: Party, declaration_id: str) -> list[Delivery]:
    """Per recipient, when each notification of a declaration was delivered and acknowledged:
    all of them for the coordinator, those the owner could know of for the owner."""
    with deployment.db.read() as conn:
        policy = deployment.policy(conn)
        declaration = declaration_rows.declaration_kind_and_owner(conn, declaration_id)
        if declaration is None or not policy.visible_to(party.id, party.role, *declaration):
            raise NotFound(f"no declaration {declaration_id}")
        if party.role != "coordinator" and declaration[1] != party.id:
            raise Forbidden("only the owner and the coordinator see deliveries")
        rows = notifications.of_declaration(
            conn, declaration_id, shown_to_owner_only=party.role != "coordinator"
        )
        deadline, now = policy.acknowledgment_deadline(), deployment.now()
        return [
            _delivery(row, deadline, now, reason)
            for row in rows
            if (reason := _shown_reason(party, row)) is not None
        ]


def overdue(deployment: Deployment, party: Party) -> list[Delivery]:
    """Overdue acknowledgments: of the caller's declarations (those it could know of), or all
    for the coordinator."""
    with deployment.db.read() as conn:
        policy = deployment.policy(conn)
        deadline, now = policy.acknowledgment_deadline(), deployment.now()
        rows = notifications.unacknowledged_before(
            conn,
            format_timestamp(now - deadline),
            owner=None if party.role == "coordinator" else party.id,
        )
        return [
            _delivery(row, deadline, now, reason)
            for row in rows
            if (reason := _shown_reason(party, row)) is not None
        ]


NOTIFICATION_ENTRY_TYPES = (
    "notification.created",
    "notification.delivered",
    "notification.acknowledged",
    "notification.responded",
)


def notification_opening(
    deployment: Deployment, party: Party, notification_id: str
) -> NotificationOpening:
    """What the recipient (or the coordinator) shows an inquiry to prove it was notified of
    exactly this, and when it received and acknowledged it: each of the notification's record
    entries with its leaf and the opening of its seal, and the openings of the conflicts and
    the comment it commits to.

    Not for the declaration's owner: the entries name the true reason and the recipient's
    ``seq``, which may depend on what the owner may not see.
    """
    with deployment.db.read() as conn:
        row = notifications.find(conn, notification_id)
        if row is None or (party.role != "coordinator" and row["recipient"] != party.id):
            raise NotFound(f"no notification {notification_id}")
        logged = log.entries_about(conn, notification_id, NOTIFICATION_ENTRY_TYPES)
        responses = notifications.responses_of(conn, notification_id)
        # Later responses are logged under "<notification id>/<number>".
        for response in responses:
            subject = notifications.response_subject(notification_id, int(response["number"]))
            logged += log.entries_about(conn, subject, ["notification.responded"])
        logged.sort(key=lambda entry: int(entry.idx))
        return NotificationOpening(
            row,
            [
                LoggedEntry(
                    entry.entry_type,
                    int(entry.idx),
                    entry.leaf,
                    entries.seal_opening(conn, int(entry.idx)),
                )
                for entry in logged
            ],
            responses,
        )
