"""The 4-D volume: a geometry with a buffer, an altitude band and a time window.

Altitudes are metres above mean sea level; ``None`` is unbounded (below for ``lower_m``, above
for ``upper_m``). Times are UTC; a window is half-open, ``[start, end)``, so two windows that
only touch do not overlap; ``end`` ``None`` means until withdrawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from deconflict.clock import format_time
from deconflict.errors import InvalidGeometry, InvalidRequest, TooLarge
from deconflict.geo.area import first_outside
from deconflict.geo.geojson import parse_geometry
from deconflict.geo.shape import Shape
from deconflict.policy import AreaOfOperations, Limits
from deconflict.requests import STORED, VolumeIn

OPEN_END_S = math.inf


@dataclass(frozen=True, eq=False)
class Volume:
    """A validated volume, ready for conflict checks. Times are UTC."""

    shape: Shape
    buffer_m: float
    lower_m: float | None
    upper_m: float | None
    start: datetime
    end: datetime | None
    # Seconds since the epoch, computed once: conflict checks compare them in hot loops.
    start_s: float = field(init=False)
    end_s: float = field(init=False)

    def __post_init__(self) -> None:
        # Frozen dataclass: derived fields are set through object.__setattr__.
        object.__setattr__(self, "start_s", self.start.timestamp())
        end_s = OPEN_END_S if self.end is None else self.end.timestamp()
        object.__setattr__(self, "end_s", end_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "geometry": self.shape.geojson,
            "buffer_m": self.buffer_m,
            "altitude": {"lower_m": self.lower_m, "upper_m": self.upper_m},
            "time": {
                "start": format_time(self.start),
                "end": None if self.end is None else format_time(self.end),
            },
        }


def build_volumes(
    items: list[VolumeIn],
    limits: Limits,
    field: str = "volumes",
    *,
    area: AreaOfOperations | None = None,
) -> list[Volume]:
    """Validate geometries and the policy's limits; errors name the field of the volume.

    With an ``area`` (the policy's area of operations), a geometry with any position outside
    it is ``InvalidGeometry`` on ``volumes[i].geometry``, saying where the position fell."""
    if not items:
        raise InvalidRequest("at least one volume is required", field=field)
    if len(items) > limits.volumes_per_declaration:
        raise TooLarge(
            f"{len(items)} volumes; the limit is {limits.volumes_per_declaration}", field=field
        )
    volumes: list[Volume] = []
    vertices = 0
    for number, item in enumerate(items):
        path = f"{field}[{number}]"
        if item.buffer_m > limits.buffer_m:
            raise TooLarge(
                f"buffer of {item.buffer_m} m; the limit is {limits.buffer_m} m",
                field=f"{path}.buffer_m",
            )
        shape = parse_geometry(
            item.geometry,
            f"{path}.geometry",
            max_vertices=limits.vertices_per_declaration,
            max_radius_m=limits.geometry_radius_m,
        )
        if area is not None:
            check_in_area(shape, area, f"{path}.geometry")
        vertices += shape.vertex_count
        if vertices > limits.vertices_per_declaration:
            raise TooLarge(
                f"more than {limits.vertices_per_declaration} vertices in the declaration",
                field=f"{path}.geometry",
            )
        volumes.append(
            Volume(
                shape=shape,
                buffer_m=item.buffer_m,
                lower_m=item.altitude.lower_m,
                upper_m=item.altitude.upper_m,
                # pydantic's own tzinfo makes every timestamp() call slow; use datetime's UTC.
                start=item.time.start.astimezone(UTC),
                end=None if item.time.end is None else item.time.end.astimezone(UTC),
            )
        )
    return volumes


def check_in_area(shape: Shape, area: AreaOfOperations, field: str) -> None:
    """Refuse a geometry with a position outside the area of operations (``geo.area``)."""
    outside = first_outside(shape, area.shape)
    if outside is None:
        return
    what = "the point" if shape.kind == "Point" else "the position"
    hint = "; latitude and longitude may be swapped" if outside.inside_if_swapped else ""
    where = f"lat {round(outside.lat, 5)}, lon {round(outside.lon, 5)}"
    raise InvalidGeometry(
        f"{what} {where} is {_far(outside.distance_m)} outside the area of operations "
        f"({area.name}){hint}",
        field=field,
    )


def _far(distance_m: float) -> str:
    if distance_m < 1000:
        return f"{distance_m:.0f} m"
    if distance_m < 10_000:
        return f"{distance_m / 1000:.1f} km"
    return f"{distance_m / 1000:,.0f} km"


def volumes_from_json(documents: list[dict[str, Any]]) -> list[Volume]:
    """Rebuild stored volumes (already validated when they were accepted)."""
    items = [VolumeIn.model_validate(document, context=STORED) for document in documents]
    unlimited = Limits(
        volumes_per_declaration=10**9,
        vertices_per_declaration=10**9,
        buffer_m=math.inf,
        geometry_radius_m=3_000_000,
    )
    return build_volumes(items, unlimited)


def time_windows_overlap(a: Volume, b: Volume) -> bool:
    """Half-open windows overlap when each starts before the other ends."""
    return a.start_s < b.end_s and b.start_s < a.end_s


def altitude_gap_m(a: Volume, b: Volume) -> float:
    """Vertical distance between two bands in metres; 0 or less when they overlap."""
    gaps = [-math.inf]
    if a.lower_m is not None and b.upper_m is not None:
        gaps.append(a.lower_m - b.upper_m)
    if b.lower_m is not None and a.upper_m is not None:
        gaps.append(b.lower_m - a.upper_m)
    return max(gaps)


def within_vertical_separation(a: Volume, b: Volume, separation_m: float) -> bool:
    return altitude_gap_m(a, b) <= separation_m
