"""Exports read back, through ``read_rows``, as the declarations they came from."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.importing import read_rows
from deconflict.importing.export_files import export_file

RING = [[36.0, 35.0], [36.1, 35.0], [36.1, 35.1], [36.0, 35.0]]


def declaration(geometry: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "id": "dcl_1",
        "kind": "site",
        "category": "hospital",
        "metadata": {"name": "مستشفى", **metadata},
        "volumes": [
            {
                "geometry": geometry,
                "buffer_m": 150.0,
                "altitude": {"lower_m": None, "upper_m": 300.0},
                "time": {"start": "2026-12-01T06:00:00Z", "end": None},
            }
        ],
    }


DECLARATIONS = [
    declaration({"type": "Point", "coordinates": [36.123456789, 35.987654321]}, external_id="a"),
    declaration({"type": "Polygon", "coordinates": [RING]}, external_id="b", comment="north"),
    declaration({"type": "LineString", "coordinates": [[36.0, 35.0], [36.2, 35.2]]}),
    declaration({"type": "Point", "coordinates": [36.5, 35.5]}, name='=HYPERLINK("x")'),
]


@pytest.mark.parametrize("fmt", ["csv", "geojson"])
def test_an_export_imports_back_as_the_same_declarations(fmt: str) -> None:
    rows = read_rows(export_file(DECLARATIONS, fmt), fmt, max_rows=100, max_bytes=1 << 20)
    assert [r.errors for r in rows] == [[]] * len(DECLARATIONS)
    for row, original in zip(rows, DECLARATIONS, strict=True):
        assert row.document is not None
        for field in ("kind", "category", "volumes", "metadata"):
            assert row.document[field] == original[field], field


def test_a_csv_export_guards_formulas_and_has_a_bom_for_excel() -> None:
    data = export_file(DECLARATIONS, "csv")
    assert data.startswith("\ufeffname,".encode())
    assert "'=HYPERLINK" in data.decode("utf-8-sig")


def test_a_declaration_of_several_volumes_is_a_row_per_volume() -> None:
    two = declaration({"type": "Point", "coordinates": [36.5, 35.5]}, external_id="z")
    two["volumes"] = two["volumes"] * 2
    rows = read_rows(export_file([two], "geojson"), "geojson", max_rows=9, max_bytes=1 << 20)
    assert [r.external_id for r in rows] == ["z", "z#2"]
    assert json.loads(export_file([two], "geojson"))["features"][0]["id"] == "dcl_1"


# What a declaration can hold: no U+0000 and no lone surrogate (requests.check_json_value).
STORABLE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1)


@settings(max_examples=150, deadline=None)
@given(name=TEXT, category=STORABLE.map(str.strip), comment=STORABLE.map(str.strip))
def test_any_text_round_trips_through_a_csv_export(name: str, category: str, comment: str) -> None:
    # Leading and trailing spaces are not kept (cells are read stripped), hence the strips.
    metadata: dict[str, Any] = {"name": name.strip() or "x"}
    if comment:
        metadata["comment"] = comment
    original = declaration({"type": "Point", "coordinates": [36.5, 35.5]})
    category = category[:200].strip()
    original["metadata"], original["category"] = metadata, category
    for fmt in ("csv", "geojson"):
        (row,) = read_rows(export_file([original], fmt), fmt, max_rows=9, max_bytes=1 << 20)
        assert row.document is not None, row.errors
        assert (row.document["metadata"], row.document["category"]) == (metadata, category)
