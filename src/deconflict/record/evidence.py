"""The parts of an evidence pack (``GET /v1/declarations/{id}/evidence``), built from the
record: each entry's leaf, its inclusion proof under the pack's one signed head, the opening
of its seal and of the commitments inside it.

Who may see which part is ``service.evidence``'s decision; this module only reads what it is
told to. ``record.evidence_check`` checks a pack with nothing but its JSON and the log's
public key; docs/record.md ("Checking an evidence pack by hand") describes the layout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from deconflict.record import entries, log_store
from deconflict.record.evidence_check import fingerprint
from deconflict.record.signing import ALGORITHM

Row = Mapping[Any, Any]


def public_key_json(public_key_b64: str) -> dict[str, str]:
    """``GET /v1/log/public-key``'s answer, with the key's fingerprint."""
    return {
        "algorithm": ALGORITHM,
        "public_key": public_key_b64,
        "fingerprint": fingerprint(public_key_b64),
    }


def logged_part(conn: Connection, index: int, size: int) -> dict[str, Any]:
    """Entry ``index`` as a pack holds it: its leaf (the string the log serves), its leaf
    hash, its RFC 6962 inclusion proof in the tree of ``size`` entries, and the opening of
    its seal (``{"entry", "salt"}``; null for a leaf logged in clear)."""
    [listed] = log_store.entries(conn, index, index + 1)
    return {
        "log_index": index,
        "leaf": listed["leaf"],
        "leaf_hash": log_store.leaf_hash_at(conn, index).hex(),
        "inclusion_proof": [h.hex() for h in log_store.inclusion_proof(conn, index, size)],
        "seal": entries.seal_opening(conn, index),
    }


def version_part(conn: Connection, row: Row, size: int) -> dict[str, Any]:
    """A ``declaration_versions`` row: what it says, its entry, and the opening of its
    commitments (``{"salts", "values"}``)."""
    return {
        "version": row["version"],
        "change": row["change"],
        "at": row["at"],
        "actor": row["actor"],
        "state": row["state"],
        **logged_part(conn, int(row["log_index"]), size),
        "opening": entries.opening_for_declaration_version(row),
    }


def event_part(
    conn: Connection, entry_type: str, index: int, size: int, openings: dict[str, Any]
) -> dict[str, Any]:
    """One entry about a notification: its type, time, the logged part and ``openings``, the
    ``{"value", "salt"}`` of each commitment inside it that the pack discloses."""
    part = logged_part(conn, index, size)
    at = json.loads(part["leaf"]).get("at")
    return {"type": entry_type, "at": at, **part, "openings": openings}


def created_openings(row: Row, *, operation_disclosed: bool) -> dict[str, Any]:
    """The commitments of a ``notification.created`` entry, opened: the conflicts it carried
    and, for a protection alert, the alert as its recipient was shown it. A redacted alert's
    commitments to the operation and its owner (salted with ``declaration_salt``) are opened
    only with ``operation_disclosed`` (the coordinator's pack): never to the alert's
    recipient, who may not know the operation."""
    openings: dict[str, Any] = {
        "conflicts": {"value": json.loads(row["conflicts"]), "salt": row["conflicts_salt"]}
    }
    if row["protection"] is not None:
        openings["protection"] = {
            "value": json.loads(row["protection"]),
            "salt": row["protection_salt"],
        }
    if operation_disclosed and row["declaration_salt"] is not None:
        salt = row["declaration_salt"]
        openings["declaration"] = {"value": entries.notified_declaration(row), "salt": salt}
        openings["actor"] = {"value": row["declaration_owner"], "salt": salt}
    return openings


def comment_opening(comment: str | None, salt: str | None) -> dict[str, Any]:
    """The opening of an acknowledgment's or response's comment (null when it had none)."""
    return {"comment": None if comment is None else {"value": comment, "salt": salt}}


def parsed(text: str | None) -> Any:
    """A JSON column's value (null stays null)."""
    return None if text is None else json.loads(text)
