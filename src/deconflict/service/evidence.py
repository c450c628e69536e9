"""Evidence packs: everything the record proves about one declaration, for an inquiry.

``GET /v1/declarations/{id}/evidence`` (owner and coordinator; API.md v1.1) answers every
version of the declaration with the opening of its commitments, every notification about it
with its delivery, acknowledgment, responses and comments, and for each of their record
entries the leaf and an inclusion proof, all under **one** signed tree head, with the log's
public key: ``deconflict verify --evidence`` then checks it with no service and no database.

What each caller is given is what it may see elsewhere, and no more:

- the coordinator: every notification of the declaration (and, for a protected declaration,
  every protection alert about it), each with all its entries opened;
- the owner: the notifications it is shown in its deliveries (``owner_reason``), with the
  reason it is shown there; of those, the entries of the delivery, the acknowledgment and
  the responses (whose times, response and comment its deliveries show already) but **not**
  the creation entry: that one names the recipient's inbox ``seq`` and the true reason, which
  may depend on what the owner may not see (``notification_opening`` refuses it the same
  way), and the places of several creation entries in one write would show a hidden
  notification between them. The notifications sent *to* the owner about its declaration
  (its protection alerts, its overdue escalations) are its own: all their entries, opened
  as ``GET /v1/notifications/{id}/opening`` opens them to it, so a redacted alert stays
  redacted (the coordinator's copies, which name the operation, are not in its pack).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Row, RowMapping

from deconflict.clock import format_time
from deconflict.errors import Forbidden, NotFound
from deconflict.record import evidence, log_store
from deconflict.record.signing import public_key_b64
from deconflict.service.declaration_reads import shown_to, visible_row
from deconflict.service.deployment import Deployment
from deconflict.service.notifications import (
    NOTIFICATION_ENTRY_TYPES,
    current_comment,
    current_responded_at,
    current_response_name,
)
from deconflict.service.parties import Party
from deconflict.service.protection import alert_json, declaration_shown
from deconflict.storage import evidence as evidence_rows
from deconflict.storage import log, notifications
from deconflict.storage.audit import snapshot
from deconflict.storage.declarations import StoredDeclaration


@dataclass(frozen=True)
class Evidence:
    """A pack before it is JSON: the declaration as the caller is shown it (the API renders
    it as every other answer does), and the parts built from the record."""

    declaration: StoredDeclaration
    versions: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    tree_head: dict[str, Any]
    public_key: dict[str, str]
    generated_at: str


@dataclass(frozen=True)
class _Shown:
    """A notification in the pack: its row, the reason the caller is shown, and whether the
    caller may see its creation entry (``full``)."""

    row: RowMapping
    reason: str
    full: bool


def evidence_pack(deployment: Deployment, party: Party, declaration_id: str) -> Evidence:
    """The evidence pack of a declaration (the module's docstring says what is in it).

    404 for a declaration the caller may not see, 403 for one it sees but does not own
    (unless it is the coordinator), exactly as ``GET /v1/declarations/{id}/opening``.
    """
    key = public_key_b64(deployment.key)
    # One snapshot (REPEATABLE READ on PostgreSQL): the rows, their entries and the head
    # agree, even while a recipient acknowledges meanwhile.
    with snapshot(deployment.db.engine) as conn:
        policy = deployment.policy(conn)
        current = visible_row(conn, policy, party, declaration_id)
        if party.role != "coordinator" and current["owner"] != party.id:
            raise Forbidden("only the owner and the coordinator get a declaration's evidence")
        head = log_store.latest_head(conn)
        if head is None:  # cannot be: the declaration's own write signed one
            raise NotFound("the record is empty")
        size = int(head["size"])
        versions = [
            evidence.version_part(conn, row, size)
            for row in evidence_rows.versions_of(conn, declaration_id)
            if row["log_index"] is not None and row["log_index"] < size
        ]
        shown = _shown_notifications(conn, party, declaration_id)
        coordinator = party.role == "coordinator"
        parts = [_notification_part(conn, i, size, coordinator=coordinator) for i in shown]
        return Evidence(
            declaration=shown_to(party, StoredDeclaration.of_row(current)),
            versions=versions,
            notifications=parts,
            tree_head=head,
            public_key=evidence.public_key_json(key),
            generated_at=format_time(deployment.now()),
        )


def _shown_notifications(conn: Connection, party: Party, declaration_id: str) -> list[_Shown]:
    """The notifications about the declaration that ``party`` is shown, by creation."""
    own = notifications.of_declaration(conn, declaration_id, shown_to_owner_only=False)
    alerts = evidence_rows.protection_alerts_about(conn, declaration_id)
    shown: list[_Shown] = []
    for row in own:
        if party.role == "coordinator" or row["recipient"] == party.id:
            shown.append(_Shown(row, str(row["reason"]), full=True))
        elif row["owner_reason"] is not None:
            shown.append(_Shown(row, str(row["owner_reason"]), full=False))
    for row in alerts:
        # The alerts of a protected declaration: the owner's own, or all for the coordinator.
        if party.role == "coordinator" or row["recipient"] == party.id:
            shown.append(_Shown(row, str(row["reason"]), full=True))
    shown.sort(key=lambda item: (item.row["created_at"], item.row["recipient"], item.row["id"]))
    return shown


def _notification_part(
    conn: Connection, item: _Shown, size: int, *, coordinator: bool
) -> dict[str, Any]:
    row = item.row
    notification_id = str(row["id"])
    responses = notifications.responses_of(conn, notification_id)
    return {
        "id": notification_id,
        "recipient": row["recipient"],
        "reason": item.reason,
        "change": row["change"],
        "created_at": row["created_at"],
        # null in a redacted alert: its recipient may not know the operation.
        "declaration": declaration_shown(row),
        # The alert as its recipient was shown it, where the creation entry proves it.
        "protection": alert_json(row) if item.full else None,
        "overdue": evidence.parsed(row["overdue"]),
        "late_notice": bool(row["late_notice"]),
        "delivered_at": row["delivered_at"],
        "acknowledged_at": row["acknowledged_at"],
        "response": current_response_name(row),
        "comment": current_comment(row),
        "responded_at": current_responded_at(row),
        "responses": [
            {"number": int(r["number"]), "response": r["response"], "at": r["at"]}
            for r in responses
        ],
        "creation_disclosed": item.full,
        "events": _events(conn, item, responses, size, coordinator=coordinator),
    }


def _events(
    conn: Connection,
    item: _Shown,
    responses: Iterable[RowMapping],
    size: int,
    *,
    coordinator: bool,
) -> list[dict[str, Any]]:
    """The notification's record entries in log order, each with the openings it needs."""
    row = item.row
    notification_id = str(row["id"])
    by_number = {int(r["number"]): r for r in responses}
    types = [t for t in NOTIFICATION_ENTRY_TYPES if item.full or t != "notification.created"]
    logged: list[tuple[Row[Any], int | None]] = [
        (entry, None) for entry in log.entries_about(conn, notification_id, types)
    ]
    for response_number in by_number:
        subject = notifications.response_subject(notification_id, response_number)
        found = log.entries_about(conn, subject, ["notification.responded"])
        logged += [(entry, response_number) for entry in found]
    events = []
    for entry, number in sorted(logged, key=lambda pair: int(pair[0].idx)):
        if int(entry.idx) >= size:
            continue  # logged after the head: not provable under it (the snapshot has none)
        if entry.entry_type == "notification.created":
            openings = evidence.created_openings(row, operation_disclosed=coordinator)
        elif entry.entry_type == "notification.acknowledged":
            openings = evidence.comment_opening(row["ack_comment"], row["ack_salt"])
        elif entry.entry_type == "notification.responded" and number is not None:
            response = by_number[number]
            openings = evidence.comment_opening(response["comment"], response["salt"])
        else:
            openings = {}
        events.append(
            evidence.event_part(conn, str(entry.entry_type), int(entry.idx), size, openings)
        )
    return events
