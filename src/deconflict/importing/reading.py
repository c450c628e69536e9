"""``read_rows``: a file's bytes, in a named format, to its rows, within the limits."""

from __future__ import annotations

from deconflict.errors import InvalidRequest
from deconflict.importing.rows import ImportRow

FORMATS = ("csv", "xlsx", "geojson", "kml")
"""The formats ``read_rows`` takes; ``kml`` also takes a KMZ (a zip holding the KML)."""


def read_rows(data: bytes, fmt: str, *, max_rows: int, max_bytes: int) -> list[ImportRow]:
    """The rows of ``data`` read as ``fmt``. Whole-file problems raise ``InvalidRequest``
    (field ``format``, ``body`` or the unknown column); more than ``max_rows`` rows or a zip
    that would inflate beyond ``max_bytes`` raise ``TooLarge``."""
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}", field="format")
    raise InvalidRequest(f"reading {fmt} files is not built yet", field="format")
