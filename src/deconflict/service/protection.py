"""Protection: no operation over a protected site or movement goes unseen.

An operation that conflicts with a protected declaration its owner can see needs a written
``justification`` (``require_justification``, checked by the writes after the key). And:

When an operation is created, changed or withdrawn and it conflicts, after or before the
change, with a declaration of a protected kind (``policy.is_protected``), that declaration's
owner and every coordinator get one notification each, with ``reason = "protection"``
(API.md v1.1, PRODUCT.md "Protection"). The notification's ``declaration_*`` columns name the
operation, so that the operation's owner sees the alerts in its deliveries (they are about
its declaration) and a late acknowledgment escalates like any other.

What a recipient is shown is decided here, once, and stored with the notification as
``protection`` (the alert as *that* recipient is shown it) and ``disclosure``:

- the coordinator: everything (``"full"``): the protected declaration, the time overlap and
  the distance, the operation, its category and its justification;
- the protected declaration's owner: what ``protection.disclose_to_owner`` allows. Under
  ``"redacted"`` (the default) the operation, its category and its justification are null,
  and so is the notification's ``declaration``: humanitarian parties may not see operations,
  and an alert that named one would let anyone who declares a site locate operations, which
  would make armed parties stop declaring. Told when and how close, the site's owner can act;
  the coordinator, told everything, follows up. ``"full"``: everything; ``"none"``: no alert.

Every reader of a notification renders it through ``notification_json``, which takes
``declaration_shown`` and ``alert_json`` from here: the inbox, the event stream, webhook
bodies and the acknowledgment answer therefore redact in this one place. The record entry of
a redacted alert holds nothing of the operation in clear either (``entries``: the operation
and the actor committed with ``declaration_salt``), since the seal's opening goes to the
recipient.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deconflict.engine.rule import Found, Subject
from deconflict.errors import InvalidRequest, JustificationRequired
from deconflict.policy import Policy
from deconflict.record import entries
from deconflict.record.commitments import new_salt
from deconflict.service import notice
from deconflict.service.deployment import Write
from deconflict.storage import parties

REASON = "protection"
FULL = "full"
REDACTED = "redacted"


@dataclass(frozen=True)
class Alerted:
    """The alerts one change made: their ids, and the parties they went to (each counted
    once, however many alerts it got: ``notifications._pad`` pads for the others)."""

    ids: list[str]
    recipients: set[str]


# -- justification (API.md v1.1), checked by the writes ------------------------------------


def require_justification(
    policy: Policy, subject: Subject, seen: list[Found], justification: str | None
) -> None:
    """409 when an operation conflicts with a protected declaration it can see (``seen``:
    the visible conflicts, the key already checked) and says nothing of why."""
    if justification is not None or subject.kind != "operation":
        return
    protected = [f for f in seen if policy.protects(subject.kind, f.other.kind)]
    if protected:
        names = ", ".join(f"{f.other.kind} {f.other.id}" for f in protected)
        raise JustificationRequired(
            f"this operation conflicts with {len(protected)} protected declaration(s): "
            f"{names}. Say in `justification` why it must go ahead (1-2,000 characters); "
            "the owners and the coordinator are alerted.",
            field="justification",
            extra={
                "protected": [f.to_json()["declaration"] for f in protected],
                "conflicts": [f.to_json() for f in seen],
            },
        )


def check_justification_kind(kind: str, justification: str | None) -> None:
    if justification is not None and kind != "operation":
        raise InvalidRequest(
            f"only operations carry a justification, not a {kind}", field="justification"
        )


# -- alerts -------------------------------------------------------------------------------


def protected_conflicts(
    policy: Policy, subject: Subject, found: Sequence[Found], before: Sequence[Found]
) -> list[Found]:
    """The conflicts of an operation with protected declarations, after the change or, for
    those it no longer has (moved away, withdrawn), before it; one per declaration, by
    distance then id."""
    if subject.kind != "operation":
        return []
    chosen: dict[str, Found] = {}
    for f in [*found, *before]:  # after the change first: what it is now
        if f.other.id is not None and policy.protects(subject.kind, f.other.kind):
            chosen.setdefault(f.other.id, f)
    return sorted(chosen.values(), key=lambda f: (f.min_distance_m, f.other.id or ""))


def alert_protected(
    write: Write,
    policy: Policy,
    subject: Subject,
    *,
    change: str,
    found: Sequence[Found],
    before: Sequence[Found],
    late_notice: bool,
    justification: str | None,
) -> Alerted:
    """Create the protection alerts of one change of ``subject`` (see the module's
    docstring); nothing unless it is an operation with protected conflicts."""
    protected = protected_conflicts(policy, subject, found, before)
    alerted = Alerted([], set())
    if not protected:
        return alerted
    active = {row["id"]: row for row in parties.active_except(write.conn, subject.owner)}
    coordinators = [row for row in active.values() if row["role"] == "coordinator"]
    disclose = policy.protection.disclose_to_owner
    for conflict in protected:
        # The operation's owner is shown the alerts of a protected declaration it may see:
        # that they went to its owner and the coordinator follows from the policy. Of one it
        # may not see (a custom visibility), it is shown nothing: that would reveal it.
        owner_reason = (
            REASON
            if policy.visible_to(
                subject.owner, subject.owner_role, conflict.other.kind, conflict.other.owner
            )
            else None
        )
        recipients: list[tuple[Mapping[Any, Any], str]] = [(c, FULL) for c in coordinators]
        owner = active.get(conflict.other.owner)
        if owner is not None and owner["role"] != "coordinator" and disclose != "none":
            recipients.insert(0, (owner, FULL if disclose == FULL else REDACTED))
        for recipient, disclosure in recipients:
            shown = alert_document(subject, conflict, justification, disclosure)
            alerted.ids.append(
                notice.create(
                    write,
                    recipient,
                    notice.about(subject),
                    change=change,
                    reason=REASON,
                    owner_reason=owner_reason,
                    late_notice=late_notice,
                    protection=json.dumps(shown),
                    protection_salt=new_salt(),
                    disclosure=disclosure,
                    # The salt of the commitments to the operation in a redacted alert's
                    # record entry.
                    declaration_salt=new_salt() if disclosure == REDACTED else None,
                )
            )
            alerted.recipients.add(str(recipient["id"]))
    return alerted


def alert_document(
    subject: Subject, conflict: Found, justification: str | None, disclosure: str
) -> dict[str, Any]:
    """The alert as a recipient with ``disclosure`` is shown it (API.md v1.1)."""
    conflict_json = conflict.to_json()
    full = disclosure == FULL
    return {
        "declaration": conflict_json["declaration"],
        "time_overlap": conflict_json["time_overlap"],
        "min_distance_m": conflict_json["min_distance_m"],
        "operation": (
            {
                "id": subject.id,
                "kind": subject.kind,
                "owner": subject.owner,
                "version": subject.version,
            }
            if full
            else None
        ),
        "category": subject.category if full else None,
        "justification": justification if full else None,
    }


# -- what every reader of a notification shows (``notifications.notification_json``) --------


def is_redacted(row: Mapping[Any, Any]) -> bool:
    return bool(row["disclosure"] == REDACTED)


def declaration_shown(row: Mapping[Any, Any]) -> dict[str, Any] | None:
    """The notification's ``declaration`` as its recipient is shown it: null in a redacted
    alert, whose recipient may not know which operation it is about."""
    return None if is_redacted(row) else entries.notified_declaration(row)


def alert_json(row: Mapping[Any, Any]) -> dict[str, Any] | None:
    """The notification's ``protection``: the alert as stored for its recipient, or null."""
    stored = row["protection"]
    if stored is None:
        return None
    document: dict[str, Any] = json.loads(stored)
    return document
