"""CSV files: UTF-8 (a byte order mark allowed, as Excel writes one), comma- or
semicolon-separated (whichever the header uses: Excel in French or Arabic locales writes
semicolons), any line ends, quoted fields with the separators or line ends inside."""

from __future__ import annotations

import csv
import io
import re

from deconflict.errors import InvalidRequest
from deconflict.importing.columns import (
    TEXT_COLUMNS,
    cells_by_column,
    check_row_count,
    header_columns,
    is_blank,
    row_from_values,
    unguard_formula,
)
from deconflict.importing.rows import ImportRow

_EXCEL_SEPARATOR = re.compile(r"sep=([,;\t|])")


def read_csv(data: bytes, *, max_rows: int) -> list[ImportRow]:
    text = decode_text(data, "CSV")
    first_line, _, rest = text.partition("\n")
    declared = _EXCEL_SEPARATOR.fullmatch(first_line.strip())
    if declared:  # Excel's "sep=;" first line says the separator itself
        separator, text = declared.group(1), rest
    else:
        separator = sniff_separator(first_line)
    try:
        lines = list(_rows(text, separator, max_rows))
    except csv.Error as exc:
        raise InvalidRequest(f"the file is not readable as CSV: {exc}", field="body") from exc
    if not lines:
        raise InvalidRequest("the file is empty: it needs a header row and rows", field="body")
    columns = header_columns(list(lines[0]))
    rows = []
    for number, cells in enumerate(lines[1:], start=1):
        if all(is_blank(cell) for cell in cells):
            continue  # a blank line keeps its number, so later rows match the sheet's lines
        values, errors = cells_by_column(number, columns, list(cells))
        for column in TEXT_COLUMNS:  # the guard a CSV export put before formula-like text
            cell = values.get(column)
            if isinstance(cell, str):
                values[column] = unguard_formula(cell)
        rows.append(row_from_values(number, values, errors=errors))
    return rows


def _rows(text: str, separator: str, max_rows: int) -> list[list[str]]:
    lines = []
    data_rows = 0
    for cells in csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True):
        lines.append(cells)
        if len(lines) > 1 and not all(is_blank(cell) for cell in cells):
            data_rows += 1
            check_row_count(data_rows, max_rows)
    return lines


def decode_text(data: bytes, what: str) -> str:
    """The file as text: strict UTF-8, one leading byte order mark dropped. A body that is
    not text (other bytes, NUL characters) is a 400 for the whole file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"the file is not {what} text in UTF-8 (byte {exc.start} is not UTF-8); save it "
            "as UTF-8 (in Excel: CSV UTF-8)",
            field="body",
        ) from exc
    if "\x00" in text:
        raise InvalidRequest(f"the file is not {what} text: it holds NUL bytes", field="body")
    return text


def sniff_separator(header: str) -> str:
    """``;`` when the header has more semicolons than commas outside quotes, else ``,``.
    (``csv.Sniffer`` guesses from the whole sample and is thrown by commas in names.)"""
    outside = re.sub(r'"[^"]*"', "", header)
    return ";" if outside.count(";") > outside.count(",") else ","
