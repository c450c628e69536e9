"""XLSX workbooks: one sheet of values; formulas, several sheets, bombs and impostors
refused for the whole file."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import pytest
from import_files import START, errors_of, rows_of, workbook, zipped

from deconflict.errors import InvalidRequest, TooLarge
from deconflict.importing import read_rows

HEADER = ["name", "category", "lat", "lon", "mgrs", "start", "external_id"]


def test_a_sheet_of_sites_reads_row_by_row() -> None:
    data = workbook(
        [
            HEADER,
            ["مدرسة الأمل", "school", 35.93, 36.63, None, START, 17],
            ["Clinique", "clinic", None, None, "37SBA1234567890", datetime(2026, 12, 1, 6), "c2"],
            [None, None, None, None, None, None, None],
            ["Swapped", "clinic", 95, 36.6, None, START, "c3"],
        ]
    )
    rows = rows_of(data, "xlsx")
    assert [r.row for r in rows] == [1, 2, 4]
    first, second, third = rows
    assert first.document is not None and first.external_id == "17"
    assert first.document["metadata"]["name"] == "مدرسة الأمل"
    assert second.document is not None  # a date-time cell holds no zone: read as UTC
    assert second.document["volumes"][0]["time"]["start"] == START
    assert set(errors_of(third)) == {"lat"}


def test_a_formula_refuses_the_file() -> None:
    data = workbook([HEADER, ["A", "school", 35.9, "=35+1.6", None, START, "a"]])
    with pytest.raises(InvalidRequest, match="D2 holds a formula"):
        rows_of(data, "xlsx")


def test_several_sheets_refuse_the_file() -> None:
    data = workbook([HEADER, ["A", "school", 35.9, 36.6, None, START, "a"]], [["notes"]])
    with pytest.raises(InvalidRequest, match="2 sheets"):
        rows_of(data, "xlsx")


def test_an_unknown_column_refuses_the_file_naming_it() -> None:
    with pytest.raises(InvalidRequest) as caught:
        rows_of(workbook([[*HEADER, "Remarks"], ["A"] * 8]), "xlsx")
    assert caught.value.errors[0]["field"] == "Remarks"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"name,lat,lon\nA,1,2\n", id="csv-named-xlsx"),
        pytest.param(zipped({"hello.txt": b"hi"}), id="a-zip-that-is-no-workbook"),
        pytest.param(zipped({"[Content_Types].xml": b"<nonsense"}), id="broken-workbook"),
        pytest.param(b"PK\x03\x04garbage" * 10, id="truncated-zip"),
    ],
)
def test_a_file_that_is_not_xlsx_is_a_400(data: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        rows_of(data, "xlsx")
    assert caught.value.errors[0]["field"] == "body"


def test_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    bomb = zipped({"xl/worksheets/sheet1.xml": b"\x00" * (64 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    with pytest.raises(TooLarge):
        read_rows(bomb, "xlsx", max_rows=10, max_bytes=100 * 1024 * 1024)  # ratio
    with pytest.raises(TooLarge):
        read_rows(bomb, "xlsx", max_rows=10, max_bytes=4 * 1024 * 1024)  # total


def test_a_member_lying_about_its_size_cannot_inflate_past_it() -> None:
    # A bomb that declares a small size: zipfile stops at the declared size (bad CRC).
    data = bytearray(zipped({"xl/workbook.xml": b"<" * 5_000_000}))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0]
    assert info.file_size == 5_000_000
    # Rewrite the declared size in the central directory and the local header to 10 bytes.
    size = (5_000_000).to_bytes(4, "little")
    assert data.count(size) == 2
    data = bytearray(bytes(data).replace(size, (10).to_bytes(4, "little")))
    with pytest.raises(InvalidRequest):
        rows_of(bytes(data), "xlsx")


def test_more_rows_than_the_limit_is_413() -> None:
    data = workbook([HEADER, *([f"S{n}", "c", 35.9, 36.6, None, START, n] for n in range(6))])
    assert len(rows_of(data, "xlsx", max_rows=6)) == 6
    with pytest.raises(TooLarge):
        rows_of(data, "xlsx", max_rows=5)
