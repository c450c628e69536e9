"""The leaf of every record entry, built only from stored rows.

The service builds a leaf from the row it has just written; ``deconflict verify`` builds it
again from the same row, years later, and compares. So a builder reads nothing but its row
(and, for declarations, the previous version's id, which it is given), and every sensitive
value (coordinates, metadata, category, restricts, conflicts, comments) enters only as
``commit(value, salt)`` with the salt stored in the row. JSON columns hold text: they are
parsed first, so a commitment is to the value, not to its whitespace.

Each entry is ``{"type", "at", "actor", ...}``: what happened, when (RFC 3339 UTC) and which
party did it, plus the ids and versions involved. Only the entries about what every party
sees (parties and the policy) are leaves as they are, in clear. Every other entry is
*sealed*: its leaf
is ``{"type": "sealed", "at", "commitment"}`` with ``commitment = commit(entry, salt)``, one
uniform shape whatever the entry, so the public log shows neither the ids, owners, kinds,
recipients and flags it holds nor even which kind of entry it is; the entry and its salt
(the seal's opening) go to those who may see it. Entries logged before a deployment moved to
sealing (``meta.sealed_from``) stay in clear, as they were. docs/record.md shows every format.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from deconflict.record.canonical import canonical_json
from deconflict.record.commitments import check_opening, commit, new_salt
from deconflict.storage import declarations, log, notifications, parties, policies, subscriptions
from deconflict.storage.meta import get_meta

# A row as SQLAlchemy returns it (RowMapping), or any mapping of column names to values.
Row = Mapping[Any, Any]

# A builder below: the entry of one stored row.
Builder = Callable[[Row], dict[str, Any]]

DECLARATION_FIELDS = ("volumes", "metadata", "category", "restricts")

ENTRY_TYPES = (
    "declaration.created",
    "declaration.updated",
    "declaration.withdrawn",
    "notification.created",
    "notification.delivered",
    "notification.acknowledged",
    "notification.responded",
    "notification.padding",
    "party.registered",
    "party.revoked",
    "subscription.created",
    "policy.changed",
)

# What every party sees (GET /v1/parties, GET /v1/policy) is logged in clear; the rest sealed.
CLEAR_TYPES = frozenset({"party.registered", "party.revoked", "policy.changed"})
SEALED = "sealed"
# The meta key holding the index of the first entry logged in the sealed format.
SEALED_FROM = "sealed_from"


# --- the form an entry takes in the log ------------------------------------------------------


@dataclass(frozen=True)
class Logged:
    """An entry as the log holds it: the public leaf, and for a sealed one the entry it seals
    (canonical JSON) and the salt of its commitment."""

    leaf: dict[str, Any]
    sealed: str | None = None
    salt: str | None = None


def is_sealed_type(entry_type: str) -> bool:
    return entry_type not in CLEAR_TYPES


def seal(entry: Mapping[str, Any], salt: str) -> dict[str, Any]:
    """The sealed leaf of ``entry``: its own time, and a commitment to all of it."""
    return {"type": SEALED, "at": entry["at"], "commitment": commit(dict(entry), salt)}


def record_form(entry: dict[str, Any]) -> Logged:
    """How a new entry is logged: sealed with a fresh salt, unless every party sees it."""
    if not is_sealed_type(str(entry["type"])):
        return Logged(entry)
    salt = new_salt()
    return Logged(seal(entry, salt), canonical_json(entry), salt)


def sealed_from(conn: Connection) -> int:
    """The index from which entries are sealed. A database made at the current schema without
    migrations (only tests do that) has no older entries: 0."""
    value = get_meta(conn, SEALED_FROM)
    return 0 if value is None else int(value)


def seal_opening(conn: Connection, index: int) -> dict[str, Any] | None:
    """The opening of the sealed leaf at ``index``: ``{"entry", "salt"}``; None when the leaf
    is in clear. For the parties who may see the entry, never for the public."""
    found = log.seal_at(conn, index)
    if found is None:
        return None
    sealed, salt = found
    return {"entry": json.loads(sealed), "salt": salt}


def unseal(leaf: Mapping[str, Any], opening: Any) -> dict[str, Any] | None:
    """The entry behind ``leaf``: the leaf itself when it is in clear, the opened entry when
    ``opening`` (``{"entry", "salt"}``) opens its seal, else None."""
    if leaf.get("type") != SEALED:
        return dict(leaf)
    if not isinstance(opening, Mapping):
        return None
    entry, salt, commitment = opening.get("entry"), opening.get("salt"), leaf.get("commitment")
    if (
        not isinstance(entry, dict)
        or not isinstance(salt, str)
        or not isinstance(commitment, str)
        or entry.get("at") != leaf.get("at")
        or not check_opening(commitment, entry, salt)
    ):
        return None
    return entry


# --- builders: one per entry type, each from its row -----------------------------------------


def declaration_entry(row: Row, previous_version: str | None) -> dict[str, Any]:
    """``declaration.created|updated|withdrawn`` from a ``declaration_versions`` row.

    ``previous_version`` is the version this one replaced (None when created): the row does
    not hold it, the history does (see ``previous_declaration_version``).
    """
    values = _declaration_values(row)
    salts = json.loads(row["salts"])
    commitments = {
        name: None if values[name] is None else commit(values[name], salts[name])
        for name in DECLARATION_FIELDS
    }
    # An operation's justification (API.md v1.1), only when it has one: every entry logged
    # before justifications existed, and every other one, rebuilds byte for byte.
    justification = row.get("justification")
    if justification is not None:
        commitments["justification"] = commit(justification, salts["justification"])
    return {
        "type": f"declaration.{row['change']}",
        "at": row["at"],
        "actor": row["actor"],
        "declaration": {
            "id": row["declaration_id"],
            "kind": row["kind"],
            "owner": row["owner"],
            "version": row["version"],
            "previous_version": previous_version,
            "state": row["state"],
            "late_notice": bool(row["late_notice"]),
            **commitments,
        },
    }


def notification_created_entry(row: Row) -> dict[str, Any]:
    """``notification.created``; the actor is the owner whose declaration caused it."""
    return {
        "type": "notification.created",
        "at": row["created_at"],
        "actor": row["declaration_owner"],
        "notification": {
            "id": row["id"],
            "recipient": row["recipient"],
            "seq": int(row["seq"]),
            "change": row["change"],
            "reason": row["reason"],
            "declaration": notified_declaration(row),
            "late_notice": bool(row["late_notice"]),
            "conflicts": commit(json.loads(row["conflicts"]), row["conflicts_salt"]),
        },
    }


def notified_declaration(row: Row) -> dict[str, Any]:
    """The declaration a ``notifications`` row is about, ``{"id", "kind", "owner",
    "version"}``: as its entry names it, and as every answer about it does."""
    return {
        "id": row["declaration_id"],
        "kind": row["declaration_kind"],
        "owner": row["declaration_owner"],
        "version": row["declaration_version"],
    }


def padding_entry(row: Row, slot: int) -> dict[str, Any]:
    """``notification.padding``, always sealed: stands for a party that was not told of a
    declaration version (``notifications._pad`` says why), from that version's
    ``declaration_versions`` row."""
    return {
        "type": "notification.padding",
        "at": row["at"],
        "declaration": {"id": row["declaration_id"], "version": row["version"]},
        "slot": slot,
    }


def padding_subject(declaration_id: str, version: str, slot: int) -> str:
    return f"{declaration_id}/{version}/{slot}"


def notification_delivered_entry(row: Row) -> dict[str, Any]:
    """``notification.delivered``: the first delivery, by the recipient's channel."""
    return {
        "type": "notification.delivered",
        "at": _required(row, "delivered_at", "notification"),
        "actor": row["recipient"],
        "notification": row["id"],
        "via": row["delivered_via"],
    }


def notification_acknowledged_entry(row: Row) -> dict[str, Any]:
    """``notification.acknowledged``; the comment, if any, only as a commitment. From a row of
    ``notifications.acknowledged_row``: ``response`` is the first response, given with the
    acknowledgment, and is left out for acknowledgments made before responses existed, so
    that their leaves rebuild as they were logged."""
    comment = row["ack_comment"]
    entry = {
        "type": "notification.acknowledged",
        "at": _required(row, "acknowledged_at", "notification"),
        "actor": row["recipient"],
        "notification": row["id"],
        "comment": None if comment is None else commit(comment, row["ack_salt"]),
    }
    # A notifications row alone (no first response beside it) is one acknowledged before.
    if row.get("first_response") is not None:
        # Response 1 is the acknowledgment's: it must say what the acknowledgment says.
        if (row.get("first_comment"), row.get("first_salt")) != (comment, row["ack_salt"]):
            raise ValueError(
                f"notification {row['id']}: response 1 holds another comment than its "
                "acknowledgment"
            )
        entry["response"] = row["first_response"]
    return entry


def notification_responded_entry(row: Row) -> dict[str, Any]:
    """``notification.responded``: a later response of the recipient (number 2, 3, ...), from
    its ``notification_responses`` row (with the notification's ``recipient``); the comment
    only as a commitment."""
    comment = row["comment"]
    return {
        "type": "notification.responded",
        "at": row["at"],
        "actor": row["recipient"],
        "notification": row["notification_id"],
        "number": int(row["number"]),
        "response": row["response"],
        "comment": None if comment is None else commit(comment, row["salt"]),
    }


def party_registered_entry(row: Row) -> dict[str, Any]:
    """``party.registered``; the first coordinator, created by ``init``, registers itself."""
    return _party_entry(
        "party.registered", row, at=row["created_at"], actor=row["created_by"] or row["id"]
    )


def party_revoked_entry(row: Row) -> dict[str, Any]:
    """``party.revoked``, by the coordinator named in ``revoked_by``."""
    at = _required(row, "revoked_at", "party")
    return _party_entry("party.revoked", row, at=at, actor=_required(row, "revoked_by", "party"))


def subscription_created_entry(row: Row) -> dict[str, Any]:
    """``subscription.created``: its kinds in clear, its area of interest as a commitment."""
    return {
        "type": "subscription.created",
        "at": row["created_at"],
        "actor": row["party"],
        "subscription": {
            "id": row["id"],
            "party": row["party"],
            "kinds": json.loads(row["kinds"]),
            "volumes": commit(json.loads(row["volumes"]), row["salt"]),
        },
    }


def policy_changed_entry(row: Row) -> dict[str, Any]:
    """``policy.changed``: the SHA-256 of the TOML text exactly as applied (UTF-8)."""
    return {
        "type": "policy.changed",
        "at": row["at"],
        "actor": row["actor"],
        "policy": {
            "id": row["id"],
            "sha256": hashlib.sha256(row["toml"].encode("utf-8")).hexdigest(),
        },
    }


def _party_entry(entry_type: str, row: Row, *, at: str, actor: str) -> dict[str, Any]:
    return {
        "type": entry_type,
        "at": at,
        "actor": actor,
        "party": {"id": row["id"], "name": row["name"], "role": row["role"]},
    }


def _required(row: Row, column: str, what: str) -> Any:
    value = row[column]
    if value is None:
        raise ValueError(f"{what} {row['id']} has no {column}")
    return value


# --- rebuilding a leaf from the database -----------------------------------------------------


def leaf_for(conn: Connection, entry_type: str, subject: str) -> dict[str, Any]:
    """The leaf of the entry ``(entry_type, subject)``, rebuilt from the stored rows.

    ``subject`` is ``"<declaration id>/<version>"`` for declarations, ``"<notification
    id>/<number>"`` for responses and the row id otherwise.
    Raises ``LookupError`` when the row is gone, ``ValueError`` when it cannot hold the entry
    (e.g. a delivery entry for a notification without ``delivered_at``).
    """
    if entry_type.startswith("declaration."):
        row = declaration_version_row(conn, subject)
        return declaration_entry(row, previous_declaration_version(conn, row))
    if entry_type == "notification.padding":
        version, _, slot = subject.rpartition("/")
        if not slot.isdigit():
            raise ValueError(f"a padding subject ends in /<slot>, not {subject!r}")
        return padding_entry(declaration_version_row(conn, version), int(slot))
    try:
        read, build = _ROW_BUILDERS[entry_type]
    except KeyError:
        raise ValueError(f"unknown entry type {entry_type!r}") from None
    return build(read(conn, subject))  # LookupError ("no <table> row ...") when it is gone


def declaration_version_row(conn: Connection, subject: str) -> Row:
    """The ``declaration_versions`` row named ``"<declaration id>/<version>"``."""
    declaration_id, _, version = subject.rpartition("/")
    row = declarations.version_row(conn, declaration_id, version)
    if row is None:
        raise LookupError(f"no declaration version {subject!r}")
    return row


def previous_declaration_version(conn: Connection, row: Row) -> str | None:
    """The version that ``row`` replaced: the same declaration's version logged just before.

    Versions are ordered by their log index, not by time: clocks of several processes may
    disagree, the log's order may not.
    """
    if row["log_index"] is None:
        raise ValueError(
            f"declaration version {row['declaration_id']}/{row['version']} has no log_index"
        )
    return declarations.version_logged_before(conn, row["declaration_id"], row["log_index"])


# Per entry type: the storage function that reads its row by id, and its builder.
_ROW_BUILDERS: dict[str, tuple[Callable[[Connection, str], Row], Builder]] = {
    "notification.created": (notifications.get, notification_created_entry),
    "notification.delivered": (notifications.get, notification_delivered_entry),
    "notification.acknowledged": (notifications.acknowledged_row, notification_acknowledged_entry),
    "notification.responded": (notifications.response_row, notification_responded_entry),
    "party.registered": (parties.get, party_registered_entry),
    "party.revoked": (parties.get, party_revoked_entry),
    "subscription.created": (subscriptions.get, subscription_created_entry),
    "policy.changed": (policies.get, policy_changed_entry),
}


# --- openings: proving what a declaration said -----------------------------------------------


def opening_for_declaration_version(row: Row) -> dict[str, Any]:
    """The opening of a version's commitments: ``{"salts": {...}, "values": {...}}``.

    Whoever holds it can show an inquiry the exact volumes, metadata, category and restricts
    behind the commitments of that version's leaf, and nothing else.
    """
    salts = json.loads(row["salts"])
    opened = {
        "salts": {name: salts.get(name) for name in DECLARATION_FIELDS},
        "values": _declaration_values(row),
    }
    if row.get("justification") is not None:
        opened["salts"]["justification"] = salts["justification"]
        opened["values"]["justification"] = row["justification"]
    return opened


def check_declaration_opening(leaf: dict[str, Any] | str, opening: Mapping[str, Any]) -> list[str]:
    """The fields of a declaration leaf that ``opening`` does not open; empty means proven.

    ``leaf`` is the leaf as a dict or as the canonical JSON string the log serves. A sealed
    leaf is opened first by ``opening["seal"]`` (``{"entry", "salt"}``); when that fails the
    answer is ``["seal"]``. A field committed as null (restricts of a non-restriction) is
    opened only by a null value.
    """
    parsed = json.loads(leaf) if isinstance(leaf, str) else leaf
    if not isinstance(parsed, dict):
        return list(DECLARATION_FIELDS)
    entry = unseal(parsed, opening.get("seal"))
    if entry is None:
        return ["seal"]
    declaration = entry.get("declaration")
    values = opening.get("values") or {}
    salts = opening.get("salts") or {}
    if (
        not isinstance(declaration, dict)
        or not isinstance(values, dict)
        or not isinstance(salts, dict)
    ):
        return list(DECLARATION_FIELDS)
    # The justification is in an entry only when the version had one (declaration_entry).
    return [
        name
        for name in (*DECLARATION_FIELDS, "justification")
        if not _opens(declaration.get(name), values.get(name), salts.get(name))
    ]


def _opens(commitment: Any, value: Any, salt: Any) -> bool:
    if commitment is None:
        return value is None
    return (
        isinstance(commitment, str)
        and isinstance(salt, str)
        and check_opening(commitment, value, salt)
    )


def _declaration_values(row: Row) -> dict[str, Any]:
    restricts = row["restricts"]
    return {
        "volumes": json.loads(row["volumes"]),
        "metadata": json.loads(row["metadata"]),
        "category": row["category"],
        "restricts": None if restricts is None else json.loads(restricts),
    }


def check_notification_opening(opening: Mapping[str, Any]) -> list[str]:
    """What a notification's opening (``GET /v1/notifications/{id}/opening``) fails to prove;
    empty means proven: each leaf opens to an entry about this notification, and the
    conflicts and comments (the acknowledgment's, and each later response's in
    ``responses``) open the commitments of those entries.

    The leaves are taken from the opening; to rest on the log rather than on the file, compare
    each with the log's entry at its index (``client.fetch_included_leaf``).
    """
    notification_id = opening.get("notification_id")
    listed = opening.get("entries")
    if not isinstance(listed, list) or not listed:
        return ["entries"]
    failed: list[str] = []
    for number, item in enumerate(listed):
        where = f"entries[{number}]"
        try:
            leaf = json.loads(item["leaf"])
        except (TypeError, KeyError, ValueError):
            failed.append(f"{where}.leaf")
            continue
        entry = unseal(leaf, item.get("seal")) if isinstance(leaf, dict) else None
        if entry is None or entry.get("type") != item.get("type"):
            failed.append(f"{where}.seal")
            continue
        failed += [f"{where}.{name}" for name in _notification_mismatches(entry, opening)]
        if _notification_id(entry) != notification_id:
            failed.append(f"{where}.notification")
    return failed


def _notification_id(entry: Mapping[str, Any]) -> Any:
    about = entry.get("notification")
    return about.get("id") if isinstance(about, dict) else about


def _notification_mismatches(entry: Mapping[str, Any], opening: Mapping[str, Any]) -> list[str]:
    """The commitments of one notification entry that the opening's values do not open."""
    if entry.get("type") == "notification.created":
        about = entry.get("notification")
        committed = about.get("conflicts") if isinstance(about, dict) else None
        return [] if _opens_value(committed, opening.get("conflicts")) else ["conflicts"]
    if entry.get("type") == "notification.acknowledged":
        return _comment_mismatch(entry.get("comment"), opening.get("comment"))
    if entry.get("type") == "notification.responded":
        listed = opening.get("responses")
        given = [
            item
            for item in (listed if isinstance(listed, list) else [])
            if isinstance(item, Mapping) and item.get("number") == entry.get("number")
        ]
        if len(given) != 1 or given[0].get("response") != entry.get("response"):
            return ["response"]
        return _comment_mismatch(entry.get("comment"), given[0].get("comment"))
    return []


def _comment_mismatch(committed: Any, value: Any) -> list[str]:
    """``["comment"]`` unless ``value`` opens the committed comment (null opens only null)."""
    if committed is None:
        return [] if value is None else ["comment"]
    return [] if _opens_value(committed, value) else ["comment"]


def _opens_value(commitment: Any, opened: Any) -> bool:
    return isinstance(opened, Mapping) and _opens(
        commitment, opened.get("value"), opened.get("salt")
    )
