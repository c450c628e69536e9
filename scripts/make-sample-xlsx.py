"""Write docs/samples/sites.xlsx from docs/samples/sites.csv (one sheet, values only).

Run from the repository: ``python scripts/make-sample-xlsx.py``. Numbers stay numbers and
text stays text, as a coordinator's own workbook would hold them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl

SAMPLES = Path(__file__).resolve().parent.parent / "docs" / "samples"


def cell(text: str) -> str | float | None:
    if not text:
        return None
    try:
        return float(text)  # decimal degrees and metres as numbers, the rest as text
    except ValueError:
        return text


def main() -> None:
    with (SAMPLES / "sites.csv").open(encoding="utf-8-sig", newline="") as source:
        lines = list(csv.reader(source))
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "sites"
    sheet.append(lines[0])
    for line in lines[1:]:
        sheet.append([cell(text) for text in line])
    sheet.freeze_panes = "A2"
    book.save(SAMPLES / "sites.xlsx")


if __name__ == "__main__":
    main()
