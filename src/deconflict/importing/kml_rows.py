"""KML and KMZ files (fastkml): every Placemark is a row, wherever its folder, its
``<name>`` the ``name`` column, its ExtendedData (``Data``/``value`` and
``SchemaData``/``SimpleData``) the other columns, its geometry the row's geometry and its
``TimeSpan`` the ``start``/``end`` when those columns are not given. ``<description>`` and
ExtendedData that are not import columns are kept in ``metadata``. A KMZ is a zip holding
``doc.kml`` (or one other ``.kml``), checked for a zip bomb before anything is inflated.

No document type, no entity: a KML file has no use for either, and they are how XML
attacks (external entities reading files, "billion laughs" expansion) start, so a file that
declares one is refused before it is parsed, and lxml is told not to resolve any anyway.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from typing import Any

from fastkml import config, features, kml, times
from lxml import etree

from deconflict.errors import DeconflictError, InvalidRequest
from deconflict.importing.columns import check_row_count, row_from_values
from deconflict.importing.geojson_rows import split_properties
from deconflict.importing.rows import ImportRow, RowError
from deconflict.importing.zips import open_zip, read_member

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_ZIP_MAGIC = b"PK\x03\x04"


def read_kml(data: bytes, *, max_rows: int, max_bytes: int) -> list[ImportRow]:
    if data.startswith(_ZIP_MAGIC):
        data = _kml_in_kmz(data, max_bytes)
    if _DECLARATION.search(data):
        raise InvalidRequest(
            "the KML file declares a DOCTYPE or ENTITY, which KML has no use for: refused",
            field="body",
        )
    placemarks = _placemarks(data)
    check_row_count(len(placemarks), max_rows)
    return [_placemark_row(n, placemark) for n, placemark in enumerate(placemarks, start=1)]


def _kml_in_kmz(data: bytes, max_bytes: int) -> bytes:
    archive = open_zip(data, "KMZ", max_bytes=max_bytes)
    with archive:
        names = [n for n in archive.namelist() if n.lower().endswith(".kml")]
        chosen = "doc.kml" if "doc.kml" in names else (names[0] if len(names) == 1 else None)
        if chosen is None:
            raise InvalidRequest(
                "the KMZ file must hold doc.kml (or a single .kml file)", field="body"
            )
        return read_member(archive, chosen, "KMZ")


def _placemarks(data: bytes) -> list[features.Placemark]:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidRequest(
            f"the file is not KML: not well-formed XML ({exc})", field="body"
        ) from exc
    tag = root.tag if isinstance(root.tag, str) else ""
    if etree.QName(tag).localname != "kml":
        raise InvalidRequest("the file is not KML: its root element is not <kml>", field="body")
    namespace = f"{{{etree.QName(tag).namespace}}}" if etree.QName(tag).namespace else ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fastkml warns about elements it skips
            document = kml.KML.class_from_element(
                ns=namespace, name_spaces=config.NAME_SPACES, element=root, strict=False
            )
            return list(_walk(document))
    except DeconflictError:
        raise
    except Exception as exc:
        # fastkml raises what its parsers raise (ValueError, TypeError, KMLParseError, ...)
        # on a malformed document: the file's fault, whichever it is.
        raise InvalidRequest("the file is not readable KML", field="body") from exc


def _walk(container: Any) -> Iterator[features.Placemark]:
    for feature in getattr(container, "features", None) or []:
        if isinstance(feature, features.Placemark):
            yield feature
        else:
            yield from _walk(feature)


def _placemark_row(number: int, placemark: features.Placemark) -> ImportRow:
    properties: dict[str, Any] = dict(_extended_data(placemark))
    if placemark.name:
        properties.setdefault("name", placemark.name)
    values, extra = split_properties(properties)
    if placemark.description:
        extra.setdefault("description", placemark.description)
    span = placemark.times
    if isinstance(span, times.TimeSpan):
        if span.begin is not None:
            values.setdefault("start", str(span.begin))
        if span.end is not None:
            values.setdefault("end", str(span.end))
    values.pop("geometry", None)
    try:
        geometry = _geojson(placemark)
    except (TypeError, ValueError, AttributeError):
        return ImportRow(number, None, None, [RowError("geometry", "cannot be read")])
    return row_from_values(number, values, geometry=geometry, extra=extra)


def _extended_data(placemark: features.Placemark) -> Iterator[tuple[str, str | None]]:
    extended = placemark.extended_data
    for element in getattr(extended, "elements", None) or []:
        if getattr(element, "name", None) and hasattr(element, "value"):  # <Data>
            yield element.name, element.value
        for simple in getattr(element, "data", None) or []:  # <SchemaData><SimpleData>
            if simple.name:
                yield simple.name, simple.value


def _geojson(placemark: features.Placemark) -> dict[str, Any] | None:
    """The placemark's geometry as a GeoJSON object of lists (pygeoif's has tuples and a
    bbox), None when it has none."""
    if placemark.geometry is None:
        return None
    interface = placemark.geometry.__geo_interface__
    return {
        "type": interface["type"],
        "coordinates": json.loads(json.dumps(interface.get("coordinates"))),
    }
