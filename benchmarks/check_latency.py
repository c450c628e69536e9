"""How long one conflict check takes among N stored volumes, in-process.

Prints a table; not a test. Usage: python benchmarks/check_latency.py [N ...]
The workload resembles ../shared/bench's: circles, corridors and small polygons over a
theatre the size of Syria, airborne and ground altitude bands, windows over 30 days.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from deconflict.conflicts import ConflictIndex, Subject
from deconflict.policy import default_policy
from deconflict.volumes import VolumeIn, build_volumes

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def random_volume(rng: np.random.Generator) -> dict[str, Any]:
    lon, lat = rng.uniform(35.5, 42.5), rng.uniform(32.0, 37.5)
    shape = rng.random()
    if shape < 0.6:
        geometry: dict[str, Any] = {"type": "Point", "coordinates": [lon, lat]}
        buffer_m = float(rng.uniform(1000, 20000))
    elif shape < 0.85:
        steps = rng.integers(2, 7)
        points = [[lon, lat]]
        for _ in range(steps - 1):
            lon, lat = lon + rng.uniform(-0.3, 0.3), lat + rng.uniform(-0.3, 0.3)
            points.append([lon, lat])
        geometry = {"type": "LineString", "coordinates": points}
        buffer_m = float(rng.uniform(1000, 5000))
    else:
        count = int(rng.integers(4, 9))
        radius = rng.uniform(0.01, 0.15)
        ring = [
            [
                lon + radius * math.cos(2 * math.pi * k / count),
                lat + radius * math.sin(2 * math.pi * k / count),
            ]
            for k in range(count)
        ]
        geometry = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        buffer_m = float(rng.uniform(0, 2000))
    if rng.random() < 0.7:
        lower = float(rng.uniform(0, 8000))
        altitude = {"lower_m": lower, "upper_m": min(lower + rng.uniform(300, 6000), 12000)}
    else:
        altitude = {"lower_m": None, "upper_m": float(rng.uniform(0, 100))}
    start = BASE + timedelta(seconds=int(rng.integers(0, 30 * 86400)))
    end = None if rng.random() < 0.05 else start + timedelta(minutes=float(rng.uniform(10, 720)))
    return {
        "geometry": geometry,
        "buffer_m": buffer_m,
        "altitude": altitude,
        "time": {"start": start.isoformat(), "end": end.isoformat() if end else None},
    }


def subject(n: int, document: dict[str, Any]) -> Subject:
    limits = default_policy().limits
    volumes = build_volumes([VolumeIn.model_validate(document)], limits)
    return Subject(
        id=f"v{n}",
        kind="operation",
        owner=f"owner{n}",
        owner_role="operator",
        version=str(n),
        category="",
        restricts=None,
        volumes=tuple(volumes),
    )


def run(n: int, queries: int = 300) -> list[str]:
    rng = np.random.default_rng(42)
    documents = [random_volume(rng) for _ in range(n)]
    probes = [subject(-k - 1, random_volume(rng)) for k in range(queries)]
    index = ConflictIndex()
    began = time.perf_counter()
    for number, document in enumerate(documents):
        index.put(subject(number, document))
    load_s = time.perf_counter() - began
    policy = default_policy()
    timings, found = [], []
    for probe in probes:
        began = time.perf_counter()
        conflicts = index.conflicts_of(policy, probe)
        timings.append((time.perf_counter() - began) * 1000)
        found.append(len(conflicts))
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    return [
        f"{n:,}",
        f"{load_s:.1f}",
        f"{statistics.median(timings):.2f}",
        f"{p99:.2f}",
        f"{statistics.mean(found):.1f}",
    ]


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    table = Table(title="One conflict check among N stored volumes (in-process)")
    for column in ("N", "load s", "p50 ms", "p99 ms", "mean conflicts"):
        table.add_column(column, justify="right")
    for n in sizes:
        table.add_row(*run(n))
    Console().print(table)


if __name__ == "__main__":
    main()
