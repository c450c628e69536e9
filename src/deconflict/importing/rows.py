"""What reading an import file yields: one ``ImportRow`` per data row or feature.

A row is either a ready ``POST /v1/declarations`` body (``document``) or the list of what is
wrong with it (``errors``), each naming the column as API.md's import columns write it. The
service takes the documents through exactly the rules of a single declaration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RowError:
    """What is wrong with one row: ``field`` is the column name (API.md "Import columns"),
    or ``geometry`` for a feature's or placemark's geometry, or ``row`` for the row itself."""

    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class ImportRow:
    """One data row (or feature, or placemark). ``row`` counts them from 1, the header not
    counted. ``document`` is a ``POST /v1/declarations`` body (kind, volumes, category,
    metadata with ``name`` and ``external_id`` and any other non-column values, key), None when
    ``errors`` is not empty. ``external_id`` is the row's, when it has one, errors or not."""

    row: int
    document: dict[str, Any] | None
    external_id: str | None
    errors: list[RowError] = field(default_factory=list)
    # The column the row's position came from (``lat``, ``mgrs`` or ``geometry``): what the
    # service names when the policy refuses the position (outside the area of operations).
    position: str = "geometry"

    @property
    def ok(self) -> bool:
        return not self.errors
