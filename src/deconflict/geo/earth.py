"""The Earth as deconflict measures it: the WGS84 ellipsoid and the bounds derived from it.

Every module that turns angles into metres (``geo`` with ``pyproj``, the engine's compiled
kernels with Vincenty) takes its constants from here, so the two can never disagree on the
ellipsoid, on what "touching" means, or on when two positions are the same one.
"""

from __future__ import annotations

from typing import Final

WGS84_A: Final = 6_378_137.0
"""Semi-major axis of WGS84, metres."""
WGS84_F: Final = 1.0 / 298.257223563
"""Flattening of WGS84."""
WGS84_B: Final = WGS84_A * (1.0 - WGS84_F)
"""Semi-minor axis of WGS84, metres."""
WGS84_E2: Final = WGS84_F * (2.0 - WGS84_F)
"""First eccentricity squared of WGS84."""

EARTH_MIN_RADIUS_M: Final = 6_335_000.0
"""Lower bound of metres per radian of central angle on WGS84: below its smallest radius of
curvature, a(1-e^2) = 6,335,439 m, so metres per radian are never fewer, on any path."""

EARTH_MAX_RADIUS_M: Final = 6_400_000.0
"""Upper bound of metres per radian: the polar radius of curvature a^2/b = 6,399,594 m."""

EARTH_MEAN_RADIUS_M: Final = 6_371_008.8
"""Only to express cap radii in metres for policy limits."""

RADIUS_RATIO: Final = EARTH_MAX_RADIUS_M / EARTH_MIN_RADIUS_M
"""By how much the ellipsoid can reorder the sphere's candidates for the closest pair."""

TOUCH_M: Final = 1e-3
"""Distances below this many metres are reported as 0 (touching)."""

SAME_POSITION: Final = 1e-12
"""Two positions closer than this on the unit sphere (6 micrometres) are the same position:
it merges 180 with -180 and every longitude at a pole, and keeps edge normals well defined."""
