"""``read_rows``: a file's bytes, in a named format, to its rows, within the limits."""

from __future__ import annotations

from deconflict.errors import InvalidRequest, TooLarge
from deconflict.importing.columns import refuse_duplicate_ids
from deconflict.importing.csv_rows import read_csv
from deconflict.importing.geojson_rows import read_geojson
from deconflict.importing.kml_rows import read_kml
from deconflict.importing.rows import ImportRow
from deconflict.importing.xlsx_rows import read_xlsx

FORMATS = ("csv", "xlsx", "geojson", "kml")
"""The formats ``read_rows`` takes; ``kml`` also takes a KMZ (a zip holding the KML)."""


def read_rows(data: bytes, fmt: str, *, max_rows: int, max_bytes: int) -> list[ImportRow]:
    """The rows of ``data`` read as ``fmt``, in file order; blank CSV and XLSX lines yield
    no row (and keep their numbers, so row N is still the sheet's line N + 1). Whole-file
    problems raise ``InvalidRequest`` (field ``format``, ``body`` or the unknown column);
    more than ``max_rows`` rows, a text file over ``max_bytes`` or a zip (XLSX, KMZ) that
    would inflate beyond ``max_bytes`` raise ``TooLarge``. The second and later rows with
    the same ``external_id`` are errors naming ``external_id``."""
    if fmt not in FORMATS:
        raise InvalidRequest(
            f"format must be one of {', '.join(FORMATS)}, not {fmt[:20]!r}", field="format"
        )
    if len(data) > max_bytes:
        raise TooLarge(f"the file is larger than {max_bytes} bytes", field="body")
    if not data.strip():
        raise InvalidRequest("the file is empty", field="body")
    if fmt == "csv":
        rows = read_csv(data, max_rows=max_rows)
    elif fmt == "xlsx":
        rows = read_xlsx(data, max_rows=max_rows, max_bytes=max_bytes)
    elif fmt == "geojson":
        rows = read_geojson(data, max_rows=max_rows)
    else:
        rows = read_kml(data, max_rows=max_rows, max_bytes=max_bytes)
    return refuse_duplicate_ids(rows)
