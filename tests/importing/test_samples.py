"""The sample files of docs/coordinators.md read with no row errors, and say the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from deconflict.importing import read_rows

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_sample_reads_with_no_row_errors(fmt: str) -> None:
    rows = read_rows((SAMPLES / f"sites.{fmt}").read_bytes(), fmt, max_rows=100, max_bytes=1 << 22)
    assert len(rows) == 20
    assert [r.errors for r in rows] == [[]] * 20
    kinds = {r.document["kind"] for r in rows if r.document}
    assert kinds == {"site", "movement"}


def test_the_csv_and_the_workbook_hold_the_same_sites() -> None:
    csv_rows, xlsx_rows = (
        read_rows((SAMPLES / f"sites.{f}").read_bytes(), f, max_rows=100, max_bytes=1 << 22)
        for f in ("csv", "xlsx")
    )
    assert [r.document for r in csv_rows] == [r.document for r in xlsx_rows]
