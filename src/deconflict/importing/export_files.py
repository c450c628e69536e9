"""Declarations out as files that import back: CSV of the import columns, or a GeoJSON
FeatureCollection whose properties are the same columns.

Each volume is one row (or feature): a declaration of one volume, as an import makes, reads
back as the same kind, category, name, geometry, buffer, altitudes, times and
``external_id``. A declaration of several volumes becomes several rows, the second and later
``external_id``\\ s suffixed ``#2``, ``#3``, ... (an import makes one declaration per row).
What the columns do not hold is not written: a restriction's ``restricts``; in CSV, metadata
other than ``name``, ``external_id`` and ``comment`` (GeoJSON keeps it as properties).

CSV is written in UTF-8 with a byte order mark, so that Excel shows Arabic names as Arabic,
and text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) are
written behind a ``'``, which the import reads back off (a party's name is not code to run on
the machine of whoever opens the export).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, Final

from deconflict.importing.columns import COLUMNS, TEXT_COLUMNS, guard_formula

EXPORT_FORMATS: Final = ("csv", "geojson")
MEDIA_TYPES: Final = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}
CSV_COLUMNS: Final = tuple(c for c in COLUMNS if c not in {"mgrs", "key"})
"""The columns an export writes: positions as decimal lat/lon or a geometry, never MGRS (a
reference names a square, not the point), and no key (a key belongs to one write)."""


def export_csv(declarations: list[dict[str, Any]]) -> bytes:
    """The declarations (API.md ``Declaration`` documents) as a CSV file."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for cells in _rows(declarations):
        point = cells.pop("geometry")
        if point["type"] == "Point":
            cells["lon"], cells["lat"] = (repr(float(v)) for v in point["coordinates"][:2])
        else:
            cells["geometry"] = json.dumps(point, separators=(",", ":"))
        for column in TEXT_COLUMNS:
            text = cells.get(column)
            if isinstance(text, str):
                cells[column] = guard_formula(text)
        writer.writerow({k: "" if v is None else v for k, v in cells.items() if k in CSV_COLUMNS})
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def export_geojson(declarations: list[dict[str, Any]]) -> bytes:
    """The declarations as a GeoJSON FeatureCollection, one feature per volume, the
    declaration's ``id`` as the feature's ``id`` (which an import ignores)."""
    features = []
    for declaration in declarations:
        for cells in _rows([declaration]):
            geometry = cells.pop("geometry")
            properties = {k: v for k, v in cells.items() if k not in {"extra"}}
            for key, value in cells.get("extra", {}).items():
                properties.setdefault(key, value)
            features.append(
                {
                    "type": "Feature",
                    "id": declaration.get("id"),
                    "geometry": geometry,
                    "properties": properties,
                }
            )
    collection = {"type": "FeatureCollection", "features": features}
    return json.dumps(collection, ensure_ascii=False, indent=1).encode("utf-8")


def export_file(declarations: list[dict[str, Any]], fmt: str) -> bytes:
    return export_csv(declarations) if fmt == "csv" else export_geojson(declarations)


def _rows(declarations: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One dict of column values per volume (``geometry`` a GeoJSON object; ``extra`` the
    metadata the columns do not hold)."""
    for declaration in declarations:
        metadata = declaration.get("metadata") or {}
        external_id = metadata.get("external_id")
        extra = {
            k: v
            for k, v in metadata.items()
            if k not in {"name", "external_id", "comment"} and k not in COLUMNS
        }
        for number, volume in enumerate(declaration.get("volumes") or [], start=1):
            altitude = volume.get("altitude") or {}
            time = volume.get("time") or {}
            ident = external_id
            if ident is not None and number > 1:
                ident = f"{ident}#{number}"
            yield {
                "name": metadata.get("name", ""),
                "category": declaration.get("category", ""),
                "kind": declaration.get("kind"),
                "geometry": volume["geometry"],
                "buffer_m": volume.get("buffer_m", 0),
                "start": time.get("start"),
                "end": time.get("end"),
                "lower_m": altitude.get("lower_m"),
                "upper_m": altitude.get("upper_m"),
                "external_id": ident,
                "comment": metadata.get("comment"),
                "extra": extra,
            }
