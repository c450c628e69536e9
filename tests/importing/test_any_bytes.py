"""Whatever the bytes, reading them raises nothing but deconflict's own errors (which the
API answers as 400 or 413), never an exception of a parser underneath (a 500)."""

from __future__ import annotations

import io
import zipfile

from hypothesis import given, settings
from hypothesis import strategies as st
from import_files import START, workbook

from deconflict.errors import DeconflictError
from deconflict.importing import FORMATS, ImportRow, read_rows

SEEDS = [
    f"name,lat,lon,start\nA,35,36,{START}\n".encode(),
    b'{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"properties":{}}]}',
    b'<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>A</name>'
    b"<Point><coordinates>36,35</coordinates></Point></Placemark></kml>",
    workbook([["name", "lat", "lon", "start"], ["A", 35, 36, START]]),
]


def _read(data: bytes, fmt: str) -> list[ImportRow] | None:
    try:
        return read_rows(data, fmt, max_rows=50, max_bytes=1 << 20)
    except DeconflictError:
        return None


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed file with a few bytes changed, cut or inserted."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 20))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), mutated()), fmt=st.sampled_from(FORMATS))
def test_any_bytes_read_or_raise_a_deconflict_error(data: bytes, fmt: str) -> None:
    for row in _read(data, fmt) or []:
        assert (row.document is None) == bool(row.errors)


@settings(max_examples=100, deadline=None)
@given(
    cells=st.lists(
        # openpyxl refuses to write control characters; a spreadsheet holds none.
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30),
        min_size=4,
        max_size=4,
    )
)
def test_any_cells_give_a_document_or_errors(cells: list[str]) -> None:
    book = workbook([["name", "lat", "lon", "start"], cells])
    text = "name,lat,lon,start\n" + ",".join('"' + c.replace('"', '""') + '"' for c in cells)
    for data, fmt in ((book, "xlsx"), (text.encode(), "csv")):
        for row in _read(data, fmt) or []:
            assert (row.document is None) == bool(row.errors)


def test_a_zip_of_every_format_is_no_500() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("doc.kml", b"\x00\x01")
    for fmt in FORMATS:
        _read(out.getvalue(), fmt)
