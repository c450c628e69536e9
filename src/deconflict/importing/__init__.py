"""Import files into declaration documents, and declarations back out as files.

``read_rows(data, fmt, max_rows=, max_bytes=)`` turns a CSV, XLSX, GeoJSON FeatureCollection or
KML/KMZ file into ``ImportRow``\\ s: each a ready ``POST /v1/declarations`` body, or the errors
of that row naming its column (API.md v1.1, "Import columns"). A problem with the whole file
(not what its format says, formulas, several sheets, an unknown column) raises
``InvalidRequest`` naming ``body``, ``format`` or the column; more rows than ``max_rows``, or a
zip (XLSX, KMZ) that would inflate beyond ``max_bytes``, raises ``TooLarge`` (413).

Modules: ``rows`` (the row and its errors), ``reading`` (``read_rows``: the dispatch and the
limits), ``columns`` (one row's cells to a document), ``csv_rows``, ``xlsx_rows``,
``geojson_rows``, ``kml_rows`` (one per format), ``zips`` (the zip-bomb guard of XLSX and
KMZ), ``export_files`` (declarations to CSV and GeoJSON, which read back to the same rows).
Positions typed as DMS or MGRS are read by ``geo.coords``.
"""

from deconflict.importing.reading import FORMATS, read_rows
from deconflict.importing.rows import ImportRow, RowError

__all__ = ["FORMATS", "ImportRow", "RowError", "read_rows"]
