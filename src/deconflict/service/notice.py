"""Making one notification: the row, its place in the recipient's inbox and its record entry.

A notification of a change (``notifications``), a protection alert (``protection``) and an
overdue escalation (``escalation``) are the same ``notifications`` row, numbered 1, 2, 3, ...
in the recipient's inbox and logged as ``notification.created``; they differ only in their
reason and in a few columns of their own. They are made here, once, so the columns every
reader relies on (the inbox's ``seq``, the webhook outbox's ``webhook_next_at``, the salts the
record's commitments need) cannot differ between them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from deconflict.engine.rule import Declared
from deconflict.record import entries
from deconflict.record.commitments import new_salt
from deconflict.service.deployment import Write
from deconflict.service.parties import new_id
from deconflict.storage import notifications


def about(declaration: Declared) -> dict[str, Any]:
    """The declaration version a notification is about, as ``create`` takes it."""
    return {
        "id": declaration.id,
        "kind": declaration.kind,
        "owner": declaration.owner,
        "version": declaration.version,
    }


def create(
    write: Write,
    recipient: Mapping[Any, Any],
    declaration: Mapping[str, Any],
    *,
    change: str,
    reason: str,
    owner_reason: str | None,
    late_notice: bool,
    conflicts: list[dict[str, Any]] | None = None,
    **columns: Any,
) -> str:
    """Store one notification to ``recipient`` (its ``parties`` row) about ``declaration``
    (``{"id", "kind", "owner", "version"}``) and log it; returns its id. ``owner_reason`` is
    the reason the declaration's owner is shown (None: it is not shown it); ``columns`` are
    the row's columns of this kind of notification (a protection alert's, an escalation's)."""
    recipient_id = str(recipient["id"])
    row = {
        "id": new_id("ntf"),
        "recipient": recipient_id,
        "seq": notifications.next_seq(write.conn, recipient_id),
        "created_at": write.at,
        "change": change,
        "reason": reason,
        "owner_reason": owner_reason,
        "declaration_id": declaration["id"],
        "declaration_kind": declaration["kind"],
        "declaration_owner": declaration["owner"],
        "declaration_version": declaration["version"],
        "conflicts": json.dumps(conflicts or []),
        "conflicts_salt": new_salt(),
        "late_notice": late_notice,
        **columns,
        "webhook_attempts": 0,
        "webhook_next_at": write.at if recipient["webhook_url"] else None,
    }
    stored = notifications.insert(write.conn, row)
    write.journal.record(entries.notification_created_entry, stored)
    return str(row["id"])
