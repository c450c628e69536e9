"""XLSX workbooks (openpyxl): one sheet, values only, the first row the header.

A workbook with several sheets is refused rather than guessed at (which sheet is the list?),
and so is one with formulas: a formula's value is whatever Excel last computed and cached,
which another program may not have written and nothing here can recompute.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import openpyxl

from deconflict.errors import DeconflictError, InvalidRequest
from deconflict.importing.columns import (
    cells_by_column,
    check_row_count,
    header_columns,
    is_blank,
    row_from_values,
)
from deconflict.importing.rows import ImportRow
from deconflict.importing.zips import open_zip


def read_xlsx(data: bytes, *, max_rows: int, max_bytes: int) -> list[ImportRow]:
    open_zip(data, "XLSX", max_bytes=max_bytes).close()  # the bomb guard, before openpyxl
    try:
        lines = _sheet_rows(data, max_rows)
    except DeconflictError:
        raise
    except Exception as exc:
        # openpyxl raises whatever its parsers raise on a malformed workbook (KeyError,
        # ValueError, lxml's and zipfile's errors, ...): every one is the file's fault.
        raise InvalidRequest(
            "the file is not a readable XLSX workbook (save it from Excel or LibreOffice as "
            "Excel 2007-365 .xlsx)",
            field="body",
        ) from exc
    if not lines:
        raise InvalidRequest("the sheet is empty: it needs a header row and rows", field="body")
    columns = header_columns(lines[0])
    rows = []
    for number, cells in enumerate(lines[1:], start=1):
        if all(is_blank(cell) for cell in cells):
            continue
        values, errors = cells_by_column(number, columns, cells)
        rows.append(row_from_values(number, values, errors=errors))
    return rows


def _sheet_rows(data: bytes, max_rows: int) -> list[list[Any]]:
    with warnings.catch_warnings():
        # openpyxl warns about parts it does not read (data validation, styles): not ours.
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    try:
        if len(book.sheetnames) != 1:
            names = ", ".join(repr(n[:50]) for n in book.sheetnames[:10])
            raise InvalidRequest(
                f"the workbook has {len(book.sheetnames)} sheets ({names}); keep the one list "
                "of rows in a workbook of one sheet",
                field="body",
            )
        lines: list[list[Any]] = []
        data_rows = 0
        sheet = book.worksheets[0]
        # The sheet's own dimension (A1:XFD1048576 in a hostile file) would have every row
        # padded to its width: read the cells the sheet holds instead.
        sheet.reset_dimensions()
        for cells in sheet.iter_rows():
            values = []
            for cell in cells:
                if getattr(cell, "data_type", None) == "f":
                    raise InvalidRequest(
                        f"the cell {cell.coordinate} holds a formula ({str(cell.value)[:50]}); "
                        "import values only (copy the sheet and paste values)",
                        field="body",
                    )
                values.append(cell.value)
            lines.append(values)
            if len(lines) > 1 and not all(is_blank(v) for v in values):
                data_rows += 1
                check_row_count(data_rows, max_rows)
        return lines
    finally:
        book.close()
