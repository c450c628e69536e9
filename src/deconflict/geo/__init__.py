"""Geometry on the Earth: GeoJSON parsing and validation, shapes, caps, geodesic distances
and boxes, with each constant of the Earth defined once (``geo.earth``).

Modules: ``earth`` (WGS84 and the bounds derived from it), ``compiled`` (the numba plumbing
of the whole project), ``caps`` (unit vectors, central angles, enclosing caps), ``shape``
(``Shape`` and its parts), ``geojson`` (``parse_geometry``), ``distance`` (``min_distance_m``,
``within_m``) and ``boxes`` (``bbox_shape``, ``reach_box``). ``geo`` imports nothing of the
engine.

Contract
--------
- Datum: WGS84. GeoJSON (RFC 7946) positions are ``[lon, lat]`` in degrees; a third member
  (altitude) is accepted and ignored: altitudes belong to volumes, not to geometries.
- Geometry types: Point, LineString, Polygon, MultiPolygon. Nothing else.
- Edges are great-circle arcs, always the short way (as PostGIS ``geography``): the edge from
  lon 179.5 to lon -179.5 is 1 degree long and crosses the antimeridian. Lines and rings may
  therefore cross the antimeridian and surround a pole.
- A polygon's interior is the side of its shell that fits inside the shell's own cap (less
  than a hemisphere); winding order does not matter. Parts of a MultiPolygon may overlap.
- Distances are geodesic on the WGS84 ellipsoid, in metres, between the closest points of the
  two geometries; a polygon includes its interior. Touching, crossing and containment are
  distance 0, and so is anything closer than ``TOUCH_M`` (1 mm): coordinates carry no more
  precision than that, and it keeps shared edges and T-junctions from depending on rounding.
- The distance reported is always the geodesic length between two actual points of the two
  geometries, so it is never below the true minimum (beyond floating-point noise); it
  exceeds it by at most ~0.002 % (see ``geo.distance``).
- Limits: ``max_vertices=None`` and ``max_radius_m=None`` mean "no policy limit". Whatever the
  policy, every line or polygon part must fit in a cap of ``MAX_PART_RADIUS_DEG`` (60 degrees,
  about 6,700 km), because polygons are validated in a gnomonic projection of their own cap.
"""
