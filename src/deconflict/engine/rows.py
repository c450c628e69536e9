"""Stored declaration rows as the engine reads them: the rule's view of a row and its
volume documents (``ConflictIndex.apply_rows``, and the service's sync)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from deconflict.clock import repair_stored_time
from deconflict.engine.rule import Declared, Restricts


def stored_documents(volumes: str) -> list[dict[str, Any]]:
    """A row's ``volumes`` column as the engine reads it; times written by deconflict 0.1
    with an unpadded year (``999-01-01T...``) are read as what they meant."""
    documents: list[dict[str, Any]] = json.loads(volumes)
    for document in documents:
        time = document["time"]
        for name in ("start", "end"):
            value = time.get(name)
            if value is not None and value[4:5] != "-":  # the fast test: a 4-digit year
                time[name] = repair_stored_time(value)
    return documents


def declared_of_row(row: Mapping[Any, Any]) -> Declared:
    """The rule's view of a stored declaration row (joined with its owner's role)."""
    restricts = row["restricts"]
    return Declared(
        id=row["id"],
        kind=row["kind"],
        owner=row["owner"],
        owner_role=row["owner_role"],
        version=row["version"],
        category=row["category"],
        restricts=Restricts.from_json(json.loads(restricts) if restricts else None),
    )
