"""Warming the engine up: every compiled function run once (compiled, or loaded from numba's
cache) when the first index is made, before the first request."""

from __future__ import annotations

import math
from typing import Any

from deconflict.engine.grid import BULK
from deconflict.engine.rule import Declared, Restricts, Subject

_warmed = False


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel once, before the first request."""
    global _warmed
    if _warmed:
        return
    _warmed = True
    # The index module imports this one: import it when it runs, not when it loads.
    from deconflict.engine.index import ConflictIndex
    from deconflict.policy import default_policy

    index = ConflictIndex.__new__(ConflictIndex)
    ConflictIndex.__init__(index)  # _warmed is set: no recursion
    doc = {
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [0.1, 0], [0, 0.1], [0, 0]]]},
        "buffer_m": 10.0,
        "altitude": {"lower_m": None, "upper_m": 100.0},
        "time": {"start": "2026-01-01T00:00:00Z", "end": None},
    }
    line = {**doc, "geometry": {"type": "LineString", "coordinates": [[0, 0.2], [0.2, 0]]}}
    point = {**doc, "geometry": {"type": "Point", "coordinates": [0.05, 0.05]}}
    a = Declared("a", "operation", "p", "operator", "1", "", None)
    b = Declared("b", "restriction", "q", "coordinator", "1", "", Restricts())
    index.put_many([(a, [doc, line]), (b, [point])])
    many = [(Declared(f"m{i}", "site", f"s{i}", "humanitarian", "1", "", None), [point])
            for i in range(BULK)]  # fmt: skip
    index.put_many(many)  # the grid's bulk path
    policy = default_policy()
    index.conflicting_ids(policy, Declared(None, "operation", "r", "operator", "", "", None), [doc])
    query = index.get("a")
    assert query is not None
    index.conflicts_of(policy, Subject(**{**_fields(query), "id": None, "owner": "r"}))
    index.intersecting(query.volumes[0].shape, 0.0, math.inf)
    index.remove("a")


def _fields(subject: Subject) -> dict[str, Any]:
    return {f: getattr(subject, f) for f in (*Declared.__slots__, "volumes")}
