"""Coordinates as people type and read them: decimal degrees, degrees-minutes-seconds, MGRS.

``parse_angle`` reads one latitude or longitude, ``parse_mgrs`` one MGRS reference,
``parse_position`` either a "lat, lon" pair or an MGRS reference; ``readback`` formats a
position back in all three notations, so a person sees what the service understood (a
swapped latitude and longitude shows up as a place they did not mean).

Every error is a ``CoordinateError`` (a ``ValueError``) whose message a coordinator can act
on; callers in the layers above turn it into a 400 naming their own field.

DMS is parsed by hand: no kept library reads the spellings found in spreadsheets
(``36°12'30"N``, ``N36°12.5'``, ``36 12 30 N``, ``36d12m30s``, typographic primes and quotes).
MGRS goes through the ``mgrs`` library (GeoTrans) both ways.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal

import mgrs

Axis = Literal["lat", "lon"]

_NAMES: Final = {"lat": "latitude", "lon": "longitude"}
_LIMITS: Final = {"lat": 90.0, "lon": 180.0}
_HEMISPHERES: Final = {"lat": {"N": 1, "S": -1}, "lon": {"E": 1, "W": -1}}

# Typographic look-alikes people paste from documents, mapped to the ASCII marks.
_LOOKALIKES: Final = str.maketrans(
    {
        "º": "°",  # masculine ordinal, common on Spanish and Portuguese keyboards
        "˚": "°",  # ring above
        "\u2032": "'",  # prime
        "\u2019": "'",
        "\u2018": "'",
        "\u00b4": "'",
        "`": "'",  # grave accent
        "\u2033": '"',  # double prime
        "\u201d": '"',
        "\u201c": '"',
        "\u2212": "-",  # minus sign
        "\u2013": "-",  # en dash
        "\u00a0": " ",  # no-break space
    }
)
_TOKEN: Final = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([°'\"dDmMsSnNeEwW])|([+-]))")
_DECIMAL_COMMA: Final = re.compile(r"[+-]?\d+,\d+")
_SLOTS: Final = ("degrees", "minutes", "seconds")
_MARK_SLOT: Final = {"°": 0, "d": 0, "'": 1, "m": 1, '"': 2, "s": 2}

# UTM MGRS: zone, band, 100 km square, then an even count of digits; UPS (the poles) has no
# zone. 2 to 10 digits: 10 km to 1 m precision. A bare 100 km square is too coarse to declare.
_MGRS: Final = re.compile(r"(?:\d{1,2}[C-HJ-NP-X]|[ABYZ])[A-HJ-NP-Z]{2}(\d*)")
MGRS_DIGITS: Final = 5  # what readback writes: 1 m
_MGRS_LAT_RANGE: Final = (-80.0, 84.0)  # UTM's range; beyond it MGRS uses UPS, which we omit


class CoordinateError(ValueError):
    """A coordinate that cannot be read; the message says why in a coordinator's words."""


def parse_angle(text: str, axis: Axis) -> float:
    """Read a latitude (``axis="lat"``) or longitude (``"lon"``) typed by a person, in degrees.

    Accepted: decimal degrees (``36.2083``, ``-12.5``, a decimal comma ``36,2083``) and
    degrees-minutes-seconds or degrees-decimal-minutes in the usual spellings
    (``36°12'30"N``, ``36° 12' 30.5" N``, ``36 12 30 N``, ``N36°12.5'``, ``36d12m30s``,
    the primes U+2032 and U+2033, typographic quotes). A hemisphere letter (N/S for a
    latitude, E/W for a longitude) may stand first or last, instead of a sign. Only the last
    part may have decimals; minutes and seconds are below 60; latitudes lie within ±90,
    longitudes ±180.
    Raises ``CoordinateError`` otherwise.
    """
    name = _NAMES[axis]
    raw = text.strip()
    if not raw:
        raise CoordinateError(f"the {name} is empty")
    cleaned = raw.translate(_LOOKALIKES).replace("''", '"')
    if _DECIMAL_COMMA.fullmatch(cleaned):
        cleaned = cleaned.replace(",", ".")
    tokens = _tokens(cleaned, name, raw)
    sign, tokens = _take_hemisphere(tokens, axis, raw)
    parts = _parts(tokens, name, raw)
    value = _combine(parts, name, raw)
    limit = _LIMITS[axis]
    if value > limit:
        hint = " (are latitude and longitude swapped?)" if axis == "lat" else ""
        raise CoordinateError(
            f"the {name} {raw!r} is beyond {limit:g}°; a {name} lies between "
            f"-{limit:g} and {limit:g}{hint}"
        )
    return sign * value


def _tokens(cleaned: str, name: str, raw: str) -> list[tuple[str, str]]:
    """The text as (kind, value) tokens: "num", "mark" (a letter or sign stays as written)."""
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(cleaned):
        if cleaned[at:].isspace():
            break
        match = _TOKEN.match(cleaned, at)
        if match is None:
            bad = cleaned[at:].lstrip()[0]
            raise CoordinateError(f"the {name} {raw!r} has an unexpected character {bad!r}")
        number, mark, sign = match.groups()
        if number is not None:
            tokens.append(("num", number))
        elif sign is not None:
            tokens.append(("sign", sign))
        else:
            tokens.append(("mark", mark))
        at = match.end()
    if not any(kind == "num" for kind, _ in tokens):
        raise CoordinateError(f"the {name} {raw!r} has no number")
    return tokens


def _take_hemisphere(
    tokens: list[tuple[str, str]], axis: Axis, raw: str
) -> tuple[int, list[tuple[str, str]]]:
    """The sign (+1 or -1) from a leading sign or a hemisphere letter, and the tokens left.

    A final ``s`` right after the seconds is the seconds mark when the minutes were marked
    with a letter of the same case (``36d12m30s``, ``36D12M30S``); otherwise it is South.
    """
    name = _NAMES[axis]
    sign = 1
    found: list[str] = []
    if tokens and tokens[0][0] == "sign":
        sign = -1 if tokens[0][1] == "-" else 1
        tokens = tokens[1:]
        found.append("sign")
    letters = {"N", "S", "E", "W"}
    if tokens and tokens[0][0] == "mark" and tokens[0][1].upper() in letters:
        found.append(tokens[0][1].upper())
        tokens = tokens[1:]
    if tokens and tokens[-1][0] == "mark" and tokens[-1][1].upper() in letters:
        letter = tokens[-1][1]
        if not (letter in "sS" and _is_seconds_mark(tokens, letter)):
            found.append(letter.upper())
            tokens = tokens[:-1]
    hemispheres = [f for f in found if f != "sign"]
    if len(found) > 1:
        both = " and ".join(hemispheres) if "sign" not in found else "a sign and a hemisphere"
        raise CoordinateError(f"the {name} {raw!r} has both {both}; give only one")
    if hemispheres:
        letter = hemispheres[0]
        allowed = _HEMISPHERES[axis]
        if letter not in allowed:
            other = "longitude" if axis == "lat" else "latitude"
            raise CoordinateError(
                f"the {name} {raw!r} ends in {letter}, which is a {other} hemisphere; a {name} "
                f"takes {' or '.join(allowed)} (are latitude and longitude swapped?)"
            )
        sign = allowed[letter]
    return sign, tokens


def _is_seconds_mark(tokens: list[tuple[str, str]], letter: str) -> bool:
    minutes_marks = [value for kind, value in tokens[:-1] if kind == "mark" and value in "mM"]
    return (
        len(tokens) >= 2
        and tokens[-2][0] == "num"
        and minutes_marks == ["m" if letter == "s" else "M"]
    )


def _parts(tokens: list[tuple[str, str]], name: str, raw: str) -> list[str | None]:
    """Degrees, minutes and seconds as written (``None`` where absent), by marks or order."""
    parts: list[str | None] = [None, None, None]
    slot = 0
    pending: str | None = None
    for kind, value in tokens:
        if kind == "sign":
            raise CoordinateError(f"the {name} {raw!r} has a sign that is not at its start")
        if kind == "num":
            if pending is not None:
                slot = _place(parts, slot, pending, name, raw)
            pending = value
            continue
        mark_slot = _MARK_SLOT.get(value.lower() if value in "dDmMsS" else value)
        if mark_slot is None:
            raise CoordinateError(
                f"the {name} {raw!r} has a hemisphere letter {value!r} in the middle; put it "
                "first or last"
            )
        if pending is None:
            raise CoordinateError(f"the {name} {raw!r} has a mark {value!r} with no number")
        if mark_slot < slot:
            raise CoordinateError(
                f"the {name} {raw!r} has its {_SLOTS[mark_slot]} out of order or twice"
            )
        slot = _place(parts, mark_slot, pending, name, raw)
        pending = None
    if pending is not None:
        _place(parts, slot, pending, name, raw)
    return parts


def _place(parts: list[str | None], slot: int, value: str, name: str, raw: str) -> int:
    if slot > 2:
        raise CoordinateError(
            f"the {name} {raw!r} has more than three numbers (degrees, minutes, seconds)"
        )
    parts[slot] = value
    return slot + 1


def _combine(parts: list[str | None], name: str, raw: str) -> float:
    """Degrees from the parts, with the checks a person would make."""
    if parts[0] is None:
        raise CoordinateError(f"the {name} {raw!r} has no degrees")
    present = [i for i, part in enumerate(parts) if part is not None]
    if present != list(range(len(present))):
        raise CoordinateError(f"the {name} {raw!r} has seconds but no minutes")
    for i in present[:-1]:
        if "." in str(parts[i]):
            raise CoordinateError(
                f"the {name} {raw!r} has decimals in its {_SLOTS[i]}; only the last part "
                "may have decimals"
            )
    values = [float(str(part)) for part in parts if part is not None]
    for i, value in enumerate(values[1:], start=1):
        if value >= 60:
            raise CoordinateError(
                f"the {name} {raw!r} has {value:g} {_SLOTS[i]}; {_SLOTS[i]} must be below 60"
            )
    total = math.fsum(value / 60.0**i for i, value in enumerate(values))
    if not math.isfinite(total):
        raise CoordinateError(f"the {name} {raw!r} is not a finite number")
    return total


def parse_mgrs(text: str) -> tuple[float, float]:
    """(lat, lon) in degrees of an MGRS reference (``38SKF7636209924``, ``38s kf 7636 0992``).

    Spaces and case do not matter. The precision is 1 m (10 digits) to 10 km (2 digits); the
    point returned is the south-west corner of the square the reference names, as MGRS
    defines it and as the ``mgrs`` library reads it. Raises ``CoordinateError`` otherwise.
    """
    compact = "".join(text.split()).upper()
    match = _MGRS.fullmatch(compact)
    if match is None:
        raise CoordinateError(
            f"{text.strip()!r} is not an MGRS reference (zone, band, 100 km square and digits, "
            "e.g. 38SKF7636209924)"
        )
    digits = match.group(1)
    if len(digits) % 2 or not 2 <= len(digits) <= 10:
        raise CoordinateError(
            f"the MGRS reference {text.strip()!r} has {len(digits)} digits; give an even "
            "count from 2 (10 km) to 10 (1 m)"
        )
    try:
        lat, lon = mgrs.MGRS().toLatLon(compact)
    except Exception as exc:  # mgrs raises its own MGRSError (an Exception) for any bad input
        raise CoordinateError(
            f"the MGRS reference {text.strip()!r} names no place (check the zone, band and "
            "100 km square letters)"
        ) from exc
    return float(lat), float(lon)


def parse_position(text: str) -> tuple[float, float]:
    """(lat, lon) in degrees from one string: an MGRS reference, or "lat, lon" in decimal
    degrees or DMS (the comma may be a semicolon, or absent when hemisphere letters or a
    space separate the two). Two angles whose hemisphere letters say they were written
    longitude first (``42°30'E 36°12'N``) are read that way round."""
    stripped = text.strip()
    if not stripped:
        raise CoordinateError("the position is empty")
    if _MGRS.fullmatch("".join(stripped.split()).upper()):
        return parse_mgrs(stripped)
    first, second = _split_pair(stripped)
    if _hemisphere_of(first) in "EW" and _hemisphere_of(second) in "NS":
        first, second = second, first
    return parse_angle(first, "lat"), parse_angle(second, "lon")


def _split_pair(text: str) -> tuple[str, str]:
    for separator in (";", ","):
        if separator in text:
            pieces = text.split(separator)
            if len(pieces) == 2:
                return pieces[0], pieces[1]
    # No separator: split after the first hemisphere letter that ends an angle
    # (36°12'30"N 42°30'E), before one that starts the second (N36 12 30 E42 30),
    # or at the one space between two plain numbers (36.2 42.5).
    leading = re.fullmatch(r"([NSEWnsew][^a-zA-Z]*?)\s*([NSEWnsew]\s*\d.*)", text)
    if leading:
        return leading.group(1), leading.group(2)
    ending = re.fullmatch(r"(\d[^a-zA-Z]*[NSEWnsew])\s*(\S.*)", text)
    if ending and re.search(r"\d", ending.group(2)):
        return ending.group(1), ending.group(2)
    pieces = text.split()
    if len(pieces) == 2:
        return pieces[0], pieces[1]
    raise CoordinateError(
        f"{text!r} is not a position: write latitude, longitude (36.2083, 42.5123 or "
        "36°12'30\"N, 42°30'44\"E) or an MGRS reference (38SKF7636209924)"
    )


def _hemisphere_of(text: str) -> str:
    """The hemisphere letter that starts or ends an angle, upper case, or "-" (none)."""
    stripped = text.strip()
    for letter in (stripped[:1], stripped[-1:]):
        if letter.upper() in {"N", "S", "E", "W"} and letter != "s":
            return letter.upper()
    return "-"


def format_decimal(lat: float, lon: float) -> str:
    """``36.20833, 42.51234``: five decimals, about a metre."""
    # Adding 0.0 to the rounded value turns -0.0 into 0.0, so no "-0.00000" is shown.
    return f"{round(lat, 5) + 0.0:.5f}, {round(lon, 5) + 0.0:.5f}"


def format_dms(angle: float, axis: Axis) -> str:
    """``36°12'30.0"N``: degrees, minutes and seconds to a tenth (about 3 m), hemisphere last."""
    letters = {"lat": ("N", "S"), "lon": ("E", "W")}[axis]
    letter = letters[0] if angle >= 0 else letters[1]
    tenths = round(abs(angle) * 36000)  # rounded once, so 59.96" never shows as 60.0"
    degrees, rest = divmod(tenths, 36000)
    minutes, seconds = divmod(rest, 600)
    if tenths == 0:
        letter = letters[0]
    return f"{degrees}°{minutes}'{seconds // 10}.{seconds % 10}\"{letter}"


def format_mgrs(lat: float, lon: float) -> str | None:
    """The 1 m MGRS reference of a position, or ``None`` beyond UTM's -80..84° of latitude."""
    if not _MGRS_LAT_RANGE[0] <= lat <= _MGRS_LAT_RANGE[1]:
        return None
    reference: str = mgrs.MGRS().toMGRS(lat, lon, MGRSPrecision=MGRS_DIGITS)
    return reference


def readback(lat: float, lon: float) -> dict[str, object]:
    """A position as a person reads it back: ``lat``, ``lon`` (the numbers), ``decimal``,
    ``dms`` and ``mgrs`` (``None`` near the poles, beyond -80..84° of latitude)."""
    return {
        "lat": lat,
        "lon": lon,
        "decimal": format_decimal(lat, lon),
        "dms": f"{format_dms(lat, 'lat')} {format_dms(lon, 'lon')}",
        "mgrs": format_mgrs(lat, lon),
    }
