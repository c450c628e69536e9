"""Stand-in for ``deconflict.geo.coords`` until it is merged: decimal degrees only."""

from __future__ import annotations

import math


class CoordinateError(ValueError):
    pass


def parse_angle(text: str, axis: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise CoordinateError(f"{text[:50]!r} is not a decimal angle") from exc
    limit = 90.0 if axis == "lat" else 180.0
    if not math.isfinite(value) or abs(value) > limit:
        raise CoordinateError(f"{axis} must be between -{limit:g} and {limit:g}, not {text}")
    return value


def parse_mgrs(text: str) -> tuple[float, float]:
    raise CoordinateError("MGRS is not read yet")
