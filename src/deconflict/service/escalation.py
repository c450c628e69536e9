"""Overdue escalation: a late acknowledgment is told to the coordinators and to the owner.

A notification not acknowledged within the policy's ``acknowledgment.deadline_minutes`` is
*escalated* once: every active coordinator, and the owner of the declaration it is about (when
the owner is shown that notification, its ``owner_reason``, and is neither its recipient nor a
coordinator), get a notification with ``reason`` ``overdue`` and ``overdue``
``{"notification", "recipient", "due_at"}``, about the same declaration version. An
escalation's own lateness is not escalated.

Exactly once, however many ``serve`` processes sweep and however often they restart: a sweep
claims the late notifications (``escalated_at``, set only where it is still null) and makes
their overdue notifications in one write transaction, which holds the deployment's write lock
across processes. Either the claim and the notifications commit together or neither does, so a
process that dies mid-sweep leaves the late ones for the next sweep, and a second process
finds them claimed.

Each ``serve`` process sweeps in the background every ``DECONFLICT_ESCALATION_INTERVAL_S``
seconds (``EscalationWorker``); ``escalate_overdue`` is one sweep, for tests and tools.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from sqlalchemy.engine import RowMapping

from deconflict.clock import format_timestamp, parse_time
from deconflict.policy import Policy
from deconflict.record import entries
from deconflict.service import notice
from deconflict.service.background import BackgroundLoop
from deconflict.service.deployment import Deployment, Write
from deconflict.storage import notifications, parties

logger = logging.getLogger("deconflict.service.escalation")

BATCH = 100
"""Late notifications one sweep escalates at most: one write transaction stays short (the
write lock is the whole deployment's); a sweep that filled its batch is followed at once by
another."""

OVERDUE = "overdue"


def escalate_overdue(deployment: Deployment, *, batch: int = BATCH) -> int:
    """One sweep: escalate the late notifications not escalated yet (at most ``batch``);
    returns how many it escalated."""
    # Most sweeps find nothing: ask first, outside the write lock, with one indexed query.
    with deployment.db.read() as conn:
        cutoff = _cutoff(deployment.policy(conn), deployment)
        if not notifications.unescalated_before(conn, cutoff, limit=1):
            return 0
    with deployment.writing() as write:
        return escalate_within(write, deployment.policy(write.conn), batch=batch)


def escalate_within(write: Write, policy: Policy, *, batch: int = BATCH) -> int:
    """The sweep's work inside a write transaction: the claims and the overdue notifications
    commit with it, or, should it fail, none of them does."""
    late = notifications.unescalated_before(
        write.conn, format_timestamp(write.now - policy.acknowledgment_deadline()), limit=batch
    )
    coordinators = parties.active(write.conn, role="coordinator")
    escalated = 0
    for row in late:
        # Under the write lock no other process can have claimed it since the query; the
        # claim's own condition keeps it exactly-once should that ever change.
        if notifications.mark_escalated(write.conn, str(row["id"]), write.at):
            _notify(write, policy, row, coordinators)
            escalated += 1
    return escalated


def _cutoff(policy: Policy, deployment: Deployment) -> str:
    return format_timestamp(deployment.now() - policy.acknowledgment_deadline())


def _notify(
    write: Write, policy: Policy, late: RowMapping, coordinators: Sequence[RowMapping]
) -> list[str]:
    """The overdue notifications of one late notification; returns their ids."""
    overdue = {
        "notification": late["id"],
        "recipient": late["recipient"],
        "due_at": format_timestamp(
            parse_time(late["created_at"]) + policy.acknowledgment_deadline()
        ),
    }
    return [
        notice.create(
            write,
            recipient,
            entries.notified_declaration(late),
            change=late["change"],
            reason=OVERDUE,
            # Never listed in the owner's deliveries: the owner is told by its own notification.
            owner_reason=None,
            late_notice=bool(late["late_notice"]),
            overdue=json.dumps(overdue),
        )
        for recipient in _recipients(write, late, coordinators)
        # Nobody is told of a declaration it may not see (the coordinator sees every one, the
        # owner its own: a guard should the recipients above ever change).
        if policy.visible_to(
            recipient["id"], recipient["role"], late["declaration_kind"], late["declaration_owner"]
        )
    ]


def _recipients(
    write: Write, late: RowMapping, coordinators: Sequence[RowMapping]
) -> list[RowMapping]:
    """Every active coordinator; and the declaration's owner when it is shown the late
    notification (``owner_reason``: otherwise the escalation would tell it of a notification
    that exists because of what it may not see), is not its recipient, not a coordinator
    already, and not revoked."""
    chosen = list(coordinators)
    owner = str(late["declaration_owner"])
    if (
        late["owner_reason"] is not None
        and owner != late["recipient"]
        and owner not in {c["id"] for c in coordinators}
    ):
        found = parties.find(write.conn, owner)
        if found is not None and found["revoked_at"] is None:
            chosen.append(found)
    return chosen


class EscalationWorker(BackgroundLoop):
    """A background thread of ``deconflict serve`` that sweeps for overdue acknowledgments
    every ``interval_s`` seconds (the first sweep at once, catching up after a restart), and
    again at once after a full batch."""

    def __init__(self, deployment: Deployment, *, interval_s: float) -> None:
        super().__init__("escalation", interval_s=interval_s)
        self.deployment = deployment

    def _run(self) -> None:
        # A failed sweep claimed nothing (its transaction rolled back): the next one retries.
        self.repeat(
            lambda: escalate_overdue(self.deployment) >= BATCH,
            logger,
            "overdue escalation sweep failed",
        )
