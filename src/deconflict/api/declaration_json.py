"""The JSON of declarations in the API's answers (API.md ``Declaration``, ``Conflict``): from
the service's typed results, in the order and with the fields API.md shows.

``service/readback.py`` proves, before a write commits, that the fields of its
``StoredDeclaration`` serialise; ``declaration_json`` therefore answers those fields as they
are, and nothing it computes (a test holds it to that).
"""

from __future__ import annotations

from typing import Any

from deconflict.engine.rule import Found
from deconflict.service.declaration_reads import Opening
from deconflict.service.declarations import Written
from deconflict.storage.declarations import StoredDeclaration


def declaration_json(declaration: StoredDeclaration) -> dict[str, Any]:
    """API.md's Declaration; ``restricts`` for restrictions only."""
    document: dict[str, Any] = {
        "id": declaration.id,
        "kind": declaration.kind,
        "owner": declaration.owner,
        "version": declaration.version,
        "state": declaration.state,
        "volumes": declaration.volumes,
        # Where the first volume is, read back as decimal, DMS and MGRS (API.md v1.1).
        "position": declaration.position,
        "category": declaration.category,
        "metadata": declaration.metadata,
        "late_notice": declaration.late_notice,
        # null unless the caller is the owner or the coordinator (the service decides).
        "justification": declaration.justification,
    }
    if declaration.restricts is not None:
        document["restricts"] = declaration.restricts
    document["created_at"] = declaration.created_at
    document["updated_at"] = declaration.updated_at
    return document


def conflicts_json(found: list[Found]) -> list[dict[str, Any]]:
    return [f.to_json() for f in found]


def written_json(written: Written) -> dict[str, Any]:
    """The answer of a create, an update (with the conflicts) or a withdrawal (without)."""
    answer: dict[str, Any] = {"declaration": declaration_json(written.declaration)}
    if written.conflicts is not None:
        answer["conflicts"] = conflicts_json(written.conflicts)
    answer["receipt"] = written.receipt
    return answer


def opening_json(opening: Opening) -> dict[str, Any]:
    return {
        "declaration_id": opening.declaration_id,
        "version": opening.version,
        "log_index": opening.log_index,
        "leaf": opening.leaf,
        "seal": opening.seal,
        **opening.commitments,
    }
