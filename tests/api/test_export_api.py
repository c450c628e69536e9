"""``GET /v1/export``: what the caller may see, as a file that imports back.

The export is read back with ``read_rows`` (what the import endpoint reads) and compared with
the declarations the caller gets from ``GET /v1/declarations``; an observer's export holds no
operation (they see operations only as commitments), and bad values are 400 naming them."""

from __future__ import annotations

from typing import Any

import pytest

from deconflict.importing import read_rows
from support import Actor, point, problem_of, square, volume


def declare_sites(cast: dict[str, Actor]) -> None:
    relief = cast["relief"]
    relief.declare_ok(
        "site",
        [volume(point(36.63, 35.93), upper_m=None, hours=None)],
        category="hospital",
        metadata={"name": "مستشفى إدلب", "external_id": "h-1"},
    )
    relief.declare_ok(
        "site",
        [volume(square(36.7, 36.0), buffer_m=200)],
        category="camp",
        metadata={"name": "Camp Atmeh", "external_id": "c-1"},
    )
    cast["north"].declare_ok(
        "operation",
        [volume(point(40.0, 30.0))],
        category="strike-package-zulu",
        metadata={"name": "HAWK"},
    )


@pytest.mark.parametrize("fmt", ["csv", "geojson"])
def test_an_export_reads_back_as_the_visible_declarations(cast: dict[str, Actor], fmt: str) -> None:
    declare_sites(cast)
    for who, kinds in (("relief", {"site"}), ("north", {"site", "operation"})):
        answer = cast[who].get(f"/v1/export?format={fmt}")
        assert answer.status_code == 200, answer.text
        media = "text/csv" if fmt == "csv" else "application/geo+json"
        assert answer.headers["content-type"].startswith(media)
        assert f".{fmt}" in answer.headers["content-disposition"]
        rows = read_rows(answer.content, fmt, max_rows=100, max_bytes=1 << 20)
        listed: list[dict[str, Any]] = cast[who].get("/v1/declarations").json()["declarations"]
        assert {d["kind"] for d in listed} == kinds
        assert [r.errors for r in rows] == [[]] * len(listed)
        for row, declared in zip(rows, listed, strict=True):
            assert row.document is not None
            for field in ("kind", "category", "volumes", "metadata"):
                assert row.document[field] == declared[field]


def test_an_observer_exports_no_operation_and_kind_filters(cast: dict[str, Actor]) -> None:
    declare_sites(cast)
    text = cast["observer"].get("/v1/export?format=csv").content.decode("utf-8-sig")
    assert "strike-package-zulu" not in text and "HAWK" not in text
    assert "Camp Atmeh" in text
    only_ops = cast["north"].get("/v1/export?format=geojson&kind=operation").json()
    assert [f["properties"]["kind"] for f in only_ops["features"]] == ["operation"]


@pytest.mark.parametrize(
    ("query", "field"), [("format=xlsx", "format"), ("format=csv&kind=hospital", "kind")]
)
def test_bad_values_are_400_naming_the_parameter(
    cast: dict[str, Actor], query: str, field: str
) -> None:
    answer = cast["relief"].get(f"/v1/export?{query}")
    assert answer.status_code == 400
    assert problem_of(answer)["errors"][0]["field"] == field


def test_an_export_needs_a_token(cast: dict[str, Actor]) -> None:
    assert cast["relief"].client.get("/v1/export").status_code == 401
