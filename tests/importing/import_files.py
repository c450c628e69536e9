"""Builders of import files for the tests of ``deconflict.importing``: workbooks, KML and
zips made in memory with the very libraries a coordinator's tools use."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import openpyxl

from deconflict.importing import ImportRow, read_rows

START = "2026-12-01T06:00:00Z"
MAX_BYTES = 4 * 1024 * 1024


def rows_of(data: bytes, fmt: str, *, max_rows: int = 1000) -> list[ImportRow]:
    return read_rows(data, fmt, max_rows=max_rows, max_bytes=MAX_BYTES)


def only_row(data: bytes, fmt: str) -> ImportRow:
    rows = rows_of(data, fmt)
    assert len(rows) == 1, rows
    return rows[0]


def errors_of(row: ImportRow) -> dict[str, str]:
    return {e.field: e.message for e in row.errors}


def workbook(*sheets: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    for number, lines in enumerate(sheets):
        sheet = book.active if number == 0 else book.create_sheet(f"Sheet{number + 1}")
        assert sheet is not None
        for line in lines:
            sheet.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def kml(placemarks: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>Sites</name>'
        f"<Folder><name>Idlib</name>{placemarks}</Folder></Document></kml>"
    ).encode()


def placemark(name: str, geometry: str, **data: str) -> str:
    extended = "".join(
        f'<Data name="{key}"><value>{value}</value></Data>' for key, value in data.items()
    )
    return (
        f"<Placemark><name>{name}</name><ExtendedData>{extended}</ExtendedData>"
        f"{geometry}</Placemark>"
    )
