"""Responses: the recipient's answer to a notification, and every later change of it.

The first ``POST /v1/notifications/{id}/ack`` acknowledges ("received and understood") and
gives response number 1: ``acknowledged`` unless another is chosen (``assured``: it will keep
clear; ``cannot_assure``; ``denied``), logged in the ``notification.acknowledged`` entry. A
later one that says nothing new (the same response, or none, with the same comment or none)
changes nothing and answers the receipt of the current response. One that does (another
response, or a new comment) adds response number n + 1, logged as a ``notification.responded``
entry of its own, and it becomes the current one, which the notification, its deliveries and
the overdue list show. Every response stays in ``notification_responses`` and in the record,
so what a recipient answered, and when, can be shown afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping

from deconflict.errors import NotFound
from deconflict.record import entries, log_store
from deconflict.record.commitments import new_salt
from deconflict.requests import Response
from deconflict.service.deployment import Deployment, Write
from deconflict.service.notifications import mark_delivered
from deconflict.service.parties import Party
from deconflict.storage import notifications

DEFAULT_RESPONSE: Response = "acknowledged"


@dataclass(frozen=True)
class Acknowledged:
    notification: RowMapping
    receipt: dict[str, Any]


def current_response(row: Any) -> tuple[str, str | None]:
    """The notification's current response and its comment. One acknowledged before responses
    existed answered ``acknowledged``, with the acknowledgment's comment."""
    if row["response"] is not None:
        return str(row["response"]), row["response_comment"]
    return DEFAULT_RESPONSE, row["ack_comment"]


def acknowledge(
    deployment: Deployment,
    party: Party,
    notification_id: str,
    comment: str,
    response: Response | None = None,
) -> Acknowledged:
    """The recipient's acknowledgment, or a later response (see the module's docstring).
    ``response`` None: ``acknowledged`` on the first, the current one on a later one (so that
    repeating a plain acknowledgment never takes back an answer)."""
    with deployment.writing() as write:
        row = notifications.find(write.conn, notification_id)
        # Someone else's notification does not exist for the caller.
        if row is None or row["recipient"] != party.id:
            raise NotFound(f"no notification {notification_id}")
        if row["acknowledged_at"] is None:
            receipt = _first(write, notification_id, comment, response or DEFAULT_RESPONSE)
        else:
            receipt = _later(write, row, comment, response)
        return Acknowledged(notifications.get(write.conn, notification_id), receipt)


def _first(write: Write, notification_id: str, comment: str, response: str) -> dict[str, Any]:
    # Acknowledging proves receipt, whether or not the inbox was read.
    mark_delivered(write, notification_id, "ack")
    stored = notifications.acknowledge(
        write.conn, notification_id, write.at, comment, new_salt(), response=response
    )
    return write.journal.receipt(
        write.journal.record(entries.notification_acknowledged_entry, stored)
    )


def _later(
    write: Write, row: RowMapping, comment: str, response: Response | None
) -> dict[str, Any]:
    notification_id = str(row["id"])
    current, current_comment = current_response(row)
    chosen = response or current
    last = notifications.last_response_number(write.conn, notification_id)
    if chosen == current and comment in ("", current_comment):
        # Nothing new: the receipt of the entry that logged the current response.
        if last >= 2:
            subject = notifications.response_subject(notification_id, last)
            return log_store.existing_receipt(write.conn, "notification.responded", subject)
        return log_store.existing_receipt(write.conn, "notification.acknowledged", notification_id)
    # Number 1 is the acknowledgment's, even when it was given before responses existed and
    # so has no row of its own: later ones count from 2.
    number = max(last, 1) + 1
    stored = notifications.add_response(
        write.conn, notification_id, number, chosen, comment, new_salt(), write.at
    )
    index = write.journal.record(
        entries.notification_responded_entry,
        stored,
        subject=notifications.response_subject(notification_id, number),
    )
    return write.journal.receipt(index)
