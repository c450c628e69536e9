"""One row's cells to a ``POST /v1/declarations`` document, or the errors naming its columns.

The columns are API.md's "Import columns" (v1.1) and a few additive ones:

    name         the declaration's name (``metadata.name``); required
    category     free text: hospital, school, convoy, ...; optional
    kind         site (default), movement, restriction or operation: the service decides who
                 may declare which
    lat, lon     the position: decimal degrees or degrees-minutes-seconds (36°12'30"N) ...
    mgrs         ... or an MGRS reference (37SBA1234567890) ...
    geometry     ... or a GeoJSON geometry as text (additive: polygons round-trip through CSV);
                 a GeoJSON feature's or KML placemark's own geometry stands in for it
    buffer_m     metres around the geometry (default 0, as in ``POST /v1/declarations``)
    start, end   ISO 8601 times with a timezone; ``start`` required, ``end`` empty = open-ended
    lower_m, upper_m   altitude band in metres (``lower_m`` additive); empty = unbounded
    external_id  the row's identifier in the sender's own system: re-importing a row with the
                 same ``external_id`` updates (or leaves) the declaration instead of adding one
    key          additive: the versions the sender knows of, separated by spaces or commas
    comment      additive: free text kept in ``metadata.comment``

Each document is validated with ``requests.DeclarationIn`` and its geometry with
``geo.geojson.parse_geometry`` (no policy limits: those are the service's), so a row that reads
without errors is one ``POST /v1/declarations`` would take in shape; the service still applies
the policy, the role and the awareness key.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, Final

from deconflict.clock import format_time
from deconflict.errors import InvalidRequest, TooLarge
from deconflict.geo.coords import Axis, CoordinateError, parse_angle, parse_mgrs
from deconflict.geo.geojson import parse_geometry
from deconflict.importing.rows import ImportRow, RowError
from deconflict.policy import KINDS
from deconflict.requests import DeclarationIn, parse_json, validate

COLUMNS: Final = (
    "name",
    "category",
    "kind",
    "lat",
    "lon",
    "mgrs",
    "geometry",
    "buffer_m",
    "start",
    "end",
    "lower_m",
    "upper_m",
    "external_id",
    "key",
    "comment",
)
"""Every column an import file may have, in the order an export writes them."""

ALIASES: Final = {"latitude": "lat", "longitude": "lon", "lng": "lon", "long": "lon"}
"""Headers spreadsheets often use for a known column."""

DEFAULT_KIND: Final = "site"
DEFAULT_BUFFER_M: Final = 0.0
MAX_TEXT: Final = 200
"""The longest ``name`` or ``external_id`` (characters); ``category`` has the same limit in
``DeclarationIn``."""

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
"""How a spreadsheet cell that runs as a formula starts (OWASP, "CSV injection")."""
FORMULA_GUARD: Final = "'"
"""What a CSV export writes before such a text cell (and before a text that starts with the
guard itself, so that every text reads back as it was), and a CSV import reads off again."""
TEXT_COLUMNS: Final = ("name", "category", "external_id", "comment")
"""The columns of free text, which a spreadsheet could take for a formula."""


def guard_formula(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs as a formula."""
    return FORMULA_GUARD + text if text.startswith((*FORMULA_STARTS, FORMULA_GUARD)) else text


def unguard_formula(text: str) -> str:
    """The text ``guard_formula`` guarded; any other text as it is."""
    guarded = text.startswith(FORMULA_GUARD) and text[1:].startswith(
        (*FORMULA_STARTS, FORMULA_GUARD)
    )
    return text[1:] if guarded else text


_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


def column_name(header: object) -> str | None:
    """The known column a header names (case, surrounding spaces and inner spaces aside:
    ``External ID`` is ``external_id``), None for anything else."""
    if header is None:
        return None
    text = re.sub(r"[\s-]+", "_", str(header).strip().lower())
    text = ALIASES.get(text, text)
    return text if text in COLUMNS else None


def header_columns(cells: list[object]) -> list[str | None]:
    """The columns of a CSV or XLSX header row, None for an empty header cell. An unknown or
    repeated column, or a header with no known column at all, refuses the whole file (400
    naming it): a misspelt ``lattitude`` would otherwise drop every row's position silently."""
    columns: list[str | None] = []
    for number, cell in enumerate(cells, start=1):
        text = "" if cell is None else str(cell).strip()
        if not text:
            columns.append(None)
            continue
        name = column_name(text)
        if name is None:
            raise InvalidRequest(
                f"column {number} of the header, {text[:100]!r}, is not an import column; "
                f"the columns are {', '.join(COLUMNS)}",
                field=text[:100],
            )
        if name in columns:
            raise InvalidRequest(f"the column {name} appears twice in the header", field=name)
        columns.append(name)
    if not any(columns):
        raise InvalidRequest(
            "the first row must be a header naming the columns: "
            f"{', '.join(COLUMNS)} (name, start and lat/lon or mgrs at least)",
            field="body",
        )
    return columns


def cells_by_column(
    row: int, columns: list[str | None], cells: list[object]
) -> tuple[dict[str, object], list[RowError]]:
    """A CSV or XLSX row's cells under their columns; a value under no header is an error."""
    values: dict[str, object] = {}
    errors: list[RowError] = []
    for number, cell in enumerate(cells):
        column = columns[number] if number < len(columns) else None
        if column is not None:
            values[column] = cell
        elif not is_blank(cell):
            errors.append(
                RowError("row", f"cell {number + 1} holds a value but its column has no header")
            )
    return values, errors


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def row_from_values(
    row: int,
    values: dict[str, object],
    *,
    geometry: object | None = None,
    extra: dict[str, Any] | None = None,
    errors: list[RowError] | None = None,
) -> ImportRow:
    """The row's document from its values by column. ``geometry`` is a GeoJSON feature's or a
    placemark's own geometry (as a GeoJSON object); ``extra`` goes into ``metadata`` as it is
    (a feature's other properties); ``errors`` are those the reader already found."""
    found = list(errors or [])
    external_id = _text(values.get("external_id")) or None
    if external_id is not None and len(external_id) > MAX_TEXT:
        found.append(RowError("external_id", f"must be at most {MAX_TEXT} characters"))
    name = _text(values.get("name"))
    if not name:
        found.append(RowError("name", "a name is required"))
    elif len(name) > MAX_TEXT:
        found.append(RowError("name", f"must be at most {MAX_TEXT} characters"))
    kind = _text(values.get("kind")).lower() or DEFAULT_KIND
    if kind not in KINDS:
        found.append(RowError("kind", f"must be one of {', '.join(KINDS)}, not {kind[:50]!r}"))
    shape, source = _geometry(values, geometry, found)
    buffer_m = _number(values.get("buffer_m"), "buffer_m", found)
    lower_m = _number(values.get("lower_m"), "lower_m", found)
    upper_m = _number(values.get("upper_m"), "upper_m", found)
    start = _time(values.get("start"), "start", found)
    end = _time(values.get("end"), "end", found)
    if start is None and not any(e.field == "start" for e in found):
        found.append(RowError("start", "a start time is required, such as 2026-12-01T00:00:00Z"))
    if found:
        return ImportRow(row, None, external_id, found)
    metadata: dict[str, Any] = dict(extra or {})
    metadata["name"] = name
    if external_id is not None:
        metadata["external_id"] = external_id
    comment = _text(values.get("comment"))
    if comment:
        metadata["comment"] = comment
    document: dict[str, Any] = {
        "kind": kind,
        "category": _text(values.get("category")),
        "volumes": [
            {
                "geometry": shape,
                "buffer_m": DEFAULT_BUFFER_M if buffer_m is None else buffer_m,
                "altitude": {"lower_m": lower_m, "upper_m": upper_m},
                "time": {"start": start, "end": end},
            }
        ],
        "metadata": metadata,
        "key": _versions(values.get("key")),
    }
    try:
        validate(document, DeclarationIn)
    except InvalidRequest as exc:
        problems = [RowError(_column_of(e["field"], source), e["message"]) for e in exc.errors]
        return ImportRow(row, None, external_id, problems)
    return ImportRow(row, document, external_id, [], position=source)


def refuse_duplicate_ids(rows: list[ImportRow]) -> list[ImportRow]:
    """The rows, with the second and later rows of each ``external_id`` turned into errors:
    two rows cannot both be the one declaration an ``external_id`` stands for."""
    first: dict[str, int] = {}
    checked = []
    for item in rows:
        if item.external_id is None:
            checked.append(item)
        elif item.external_id not in first:
            first[item.external_id] = item.row
            checked.append(item)
        else:
            earlier = first[item.external_id]
            message = f"{item.external_id[:50]!r} is already the external_id of row {earlier}"
            errors = [*item.errors, RowError("external_id", message)]
            checked.append(ImportRow(item.row, None, item.external_id, errors))
    return checked


def check_row_count(count: int, max_rows: int) -> None:
    """413 when a file holds more rows than the policy lets one import hold."""
    if count > max_rows:
        raise TooLarge(
            f"the file holds more than {max_rows} rows, the most one import may hold; "
            "split it into several files",
            field="body",
        )


# -- the cells ---------------------------------------------------------------------------


def _text(value: object) -> str:
    """A cell as text: numbers without a spurious ``.0`` (a spreadsheet's 17 is ``17``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).strip()


def _versions(value: object) -> list[str]:
    """The ``key`` column: versions separated by spaces, commas or semicolons (or a list, as
    a GeoJSON property may hold them)."""
    items = value if isinstance(value, list) else [value]
    return [v for item in items for v in re.split(r"[\s,;]+", _text(item)) if v]


def _number(value: object, column: str, errors: list[RowError]) -> float | None:
    """A cell as a finite number, None when empty. ``12,5`` reads as 12.5: a French or
    Arabic spreadsheet saved as CSV writes decimals with a comma."""
    if isinstance(value, bool):
        errors.append(RowError(column, "must be a number"))
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = _text(value)
        if not text:
            return None
        if _DECIMAL_COMMA.fullmatch(text):
            text = text.replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            errors.append(RowError(column, f"must be a number in metres, not {text[:50]!r}"))
            return None
    if not math.isfinite(number):
        errors.append(RowError(column, "must be a finite number"))
        return None
    return number


def _time(value: object, column: str, errors: list[RowError]) -> str | None:
    """A cell as an RFC 3339 time in UTC, None when empty. Text is ISO 8601 and must say its
    timezone; a spreadsheet's date-time cell holds none and is read as UTC."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    else:
        text = _text(value)
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            errors.append(
                RowError(
                    column, f"{text[:50]!r} is not an ISO 8601 time such as 2026-12-01T08:00:00Z"
                )
            )
            return None
        if moment.tzinfo is None:
            errors.append(
                RowError(
                    column,
                    f"{text[:50]!r} has no timezone: write it as 2026-12-01T08:00:00Z (UTC) "
                    "or with an offset such as +03:00",
                )
            )
            return None
    try:
        return format_time(moment)
    except (OverflowError, ValueError):
        errors.append(RowError(column, "is outside the times deconflict accepts"))
        return None


def _geometry(
    values: dict[str, object], geometry: object | None, errors: list[RowError]
) -> tuple[dict[str, Any] | None, str]:
    """The row's geometry and the column it came from (``lat``, ``mgrs`` or ``geometry``):
    exactly one of lat and lon, mgrs, or a geometry."""
    has_lat, has_lon = not is_blank(values.get("lat")), not is_blank(values.get("lon"))
    has_mgrs = not is_blank(values.get("mgrs"))
    given = geometry if geometry is not None else values.get("geometry")
    has_geometry = not is_blank(given)
    ways = [has_lat or has_lon, has_mgrs, has_geometry]
    if sum(ways) > 1:
        named = [n for n, w in zip(("lat and lon", "mgrs", "geometry"), ways, strict=True) if w]
        errors.append(
            RowError(
                "mgrs" if has_mgrs else "geometry",
                f"give only one position: this row has {' and '.join(named)}",
            )
        )
        return None, "row"
    if has_geometry:
        return _given_geometry(given, errors), "geometry"
    if has_mgrs:
        try:
            lat, lon = parse_mgrs(_text(values.get("mgrs")))
        except CoordinateError as exc:
            errors.append(RowError("mgrs", str(exc)))
            return None, "mgrs"
        return _point(lon, lat), "mgrs"
    if not (has_lat or has_lon):
        errors.append(RowError("lat", "a position is required: lat and lon, or mgrs"))
        return None, "lat"
    latitude = _angle(values.get("lat"), "lat", errors)
    longitude = _angle(values.get("lon"), "lon", errors)
    if latitude is None or longitude is None:
        return None, "lat"
    return _point(longitude, latitude), "lat"


def _angle(value: object, axis: Axis, errors: list[RowError]) -> float | None:
    if is_blank(value):
        errors.append(RowError(axis, f"{axis} is empty: give both lat and lon"))
        return None
    try:
        return parse_angle(_text(value), axis)
    except CoordinateError as exc:
        errors.append(RowError(axis, str(exc)))
        return None


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def _given_geometry(given: object, errors: list[RowError]) -> dict[str, Any] | None:
    """A GeoJSON geometry (text from a CSV or XLSX cell, or an object), checked by ``geo``."""
    try:
        if isinstance(given, str):
            given = parse_json(given, "the geometry", field="geometry")
        shape = parse_geometry(given, "geometry")
    except (InvalidRequest, TooLarge) as exc:
        field = exc.errors[0]["field"] if exc.errors else "geometry"
        detail = exc.errors[0]["message"] if exc.errors else exc.detail
        where = field.removeprefix("geometry")
        errors.append(RowError("geometry", f"{where.lstrip('.')}: {detail}" if where else detail))
        return None
    return dict(shape.geojson)


_VOLUME_FIELDS: Final = (
    ("volumes[0].time.start", "start"),
    ("volumes[0].time", "end"),  # the end itself, or end not after start
    ("volumes[0].altitude.lower_m", "lower_m"),
    ("volumes[0].altitude", "upper_m"),  # upper_m itself, or lower above upper
    ("volumes[0].buffer_m", "buffer_m"),
    ("metadata.name", "name"),
    ("metadata.external_id", "external_id"),
    ("metadata.comment", "comment"),
    ("kind", "kind"),
    ("category", "category"),
    ("key", "key"),
)


def _column_of(field: str, source: str) -> str:
    """The column a ``DeclarationIn`` error's field path came from."""
    if field.startswith("volumes[0].geometry"):
        return source
    for prefix, column in _VOLUME_FIELDS:
        if field.startswith(prefix):
            return column
    return "row"
