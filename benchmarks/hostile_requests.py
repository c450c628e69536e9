"""The most expensive legal requests (issue 11, item 6), timed in-process on a real SQLite file.

Prints a table; not a test. The workload is the review's: one operator stores ``--stored``
operations (20) of ``--volumes`` volumes (100), each a ``--vertices``-vertex polygon (100)
with a 500 km buffer, all over one region (a party never conflicts with itself, so storing
them is cheap). Then:

- validation: building the volumes of one such declaration, and of one volume holding a
  MultiPolygon of ``--volumes`` x ``--vertices`` vertices (the 170 KB body of the review);
- check: a humanitarian's ``POST /v1/conflicts/check`` of a site of the same shape;
- write: another operator's operation of the same shape (``missing_awareness`` or a 413);
- small write during a heavy one: a humanitarian declares a small site far away while the
  heavy write runs in another thread; how long it took, and how much of it the heavy one
  was already running;
- the most expensive legal check: the same owner also stores ``--stored`` operations of
  ``--volumes`` closed lines of ``--vertices`` vertices, all the same circle 20 km across
  (every vertex and edge equally far from its centre, so no pair is spared measuring); a
  point at the centre with a 30 km buffer is checked against them (about half the default
  work budget), then ten such points (over it).

Each request is answered or refused (413 ``too_large`` when it is over the policy's cost
budget); the table says which. The requests go straight to the service's functions (no
HTTP, so no rate limit) to measure the work alone.

Usage (from the repository root):
    .venv/bin/python benchmarks/hostile_requests.py
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/hostile_requests.py --label before
Options: --stored, --volumes, --vertices, --seed, --label, --json FILE (append the row).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deconflict.errors import DeconflictError
from deconflict.requests import CheckIn, DeclarationIn
from deconflict.service import declaration_reads, declarations
from deconflict.service.bootstrap import initialise
from deconflict.service.deployment import Deployment
from deconflict.service.parties import Party, authenticate
from deconflict.storage.database import Database
from deconflict.volumes import build_volumes

START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
CENTRE = (38.0, 35.0)  # lon, lat
EARTH_RADIUS_M = 6_371_000.0


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ring(lon: float, lat: float, radius_m: float, vertices: int) -> list[list[float]]:
    """A closed ring of ``vertices`` distinct positions around (lon, lat)."""
    d_lat = math.degrees(radius_m / EARTH_RADIUS_M)
    d_lon = d_lat / math.cos(math.radians(lat))
    points = [
        [
            round(lon + d_lon * math.cos(2 * math.pi * k / vertices), 6),
            round(lat + d_lat * math.sin(2 * math.pi * k / vertices), 6),
        ]
        for k in range(vertices)
    ]
    return [*points, points[0]]


def heavy_volumes(rng: random.Random, volumes: int, vertices: int) -> list[dict[str, Any]]:
    """``volumes`` polygons of ``vertices`` vertices, 5 to 30 km across, within 150 km of
    the centre, 500 km buffers, all in the same three days."""
    documents = []
    for _ in range(volumes):
        lon = CENTRE[0] + rng.uniform(-1.5, 1.5)
        lat = CENTRE[1] + rng.uniform(-1.2, 1.2)
        documents.append(
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [ring(lon, lat, rng.uniform(2_500, 15_000), vertices)],
                },
                "buffer_m": 500_000,
                "altitude": {"lower_m": 0, "upper_m": 5000},
                "time": {"start": iso(START), "end": iso(START + timedelta(days=3))},
            }
        )
    return documents


def multipolygon_volume(rng: random.Random, parts: int, vertices: int) -> dict[str, Any]:
    """One volume: a MultiPolygon of ``parts`` disjoint rings of ``vertices`` vertices."""
    polygons = []
    for k in range(parts):
        lon = CENTRE[0] - 2.0 + 0.4 * (k % 10)
        lat = CENTRE[1] - 2.0 + 0.4 * (k // 10)
        polygons.append([ring(lon, lat, rng.uniform(5_000, 15_000), vertices)])
    return {
        "geometry": {"type": "MultiPolygon", "coordinates": polygons},
        "buffer_m": 0,
        "altitude": {"lower_m": 0, "upper_m": 5000},
        "time": {"start": iso(START), "end": iso(START + timedelta(hours=6))},
    }


RINGS_CENTRE = (20.0, 10.0)


def ring_volumes(volumes: int, vertices: int) -> list[dict[str, Any]]:
    line = ring(*RINGS_CENTRE, 10_000, vertices)
    return [
        {
            "geometry": {"type": "LineString", "coordinates": line},
            "buffer_m": 0,
            "altitude": {"lower_m": 0, "upper_m": 5000},
            "time": {"start": iso(START), "end": iso(START + timedelta(days=3))},
        }
        for _ in range(volumes)
    ]


def centre_points(count: int) -> list[dict[str, Any]]:
    return [
        {
            "geometry": {"type": "Point", "coordinates": list(RINGS_CENTRE)},
            "buffer_m": 30_000,
            "altitude": {"lower_m": None, "upper_m": 50},
            "time": {"start": iso(START), "end": None},
        }
        for _ in range(count)
    ]


def timed(function: Callable[[], Any]) -> tuple[float, str]:
    """Seconds taken, and what came of it: ``ok``, or the status and code of the refusal."""
    began = time.perf_counter()
    try:
        function()
        outcome = "ok"
    except DeconflictError as exc:
        outcome = f"{exc.status} {exc.code}"
    return time.perf_counter() - began, outcome


def register(deployment: Deployment, name: str, role: str) -> tuple[Party, str]:
    from deconflict.service.parties import register_party

    with deployment.writing() as write:
        party, token, _, _ = register_party(write, name=name, role=role, actor=None)  # type: ignore[arg-type]
    return party, token


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="deconflict-hostile-"))
    db = Database(f"sqlite:///{folder / 'd.db'}")
    initialise(db, folder / "d.key", folder / "policy.toml")
    deployment = Deployment(db, folder / "d.key")
    owner, _ = register(deployment, "Stored operations", "operator")
    heavy_party, _ = register(deployment, "Heavy writer", "operator")
    relief, relief_token = register(deployment, "Relief", "humanitarian")
    limits = deployment.current_policy().limits

    # The stored operations (one owner: they never conflict with each other).
    began = time.perf_counter()
    for _ in range(args.stored):
        body = DeclarationIn.model_validate(
            {"kind": "operation", "volumes": heavy_volumes(rng, args.volumes, args.vertices)}
        )
        declarations.create_declaration(deployment, owner, body)
    for _ in range(args.stored):
        body = DeclarationIn.model_validate(
            {"kind": "operation", "volumes": ring_volumes(args.volumes, args.vertices)}
        )
        declarations.create_declaration(deployment, owner, body)
    store_s = time.perf_counter() - began

    shape = heavy_volumes(rng, args.volumes, args.vertices)
    multi = multipolygon_volume(rng, args.volumes, args.vertices)
    multi_bytes = len(json.dumps(multi))

    validation_s, validation = timed(
        lambda: build_volumes(
            DeclarationIn.model_validate({"kind": "site", "volumes": shape}).volumes, limits
        )
    )
    multi_s, multi_outcome = timed(
        lambda: build_volumes(
            DeclarationIn.model_validate({"kind": "site", "volumes": [multi]}).volumes, limits
        )
    )
    check_body = CheckIn.model_validate({"kind": "site", "volumes": shape})
    authenticate(deployment, relief_token)  # warm the token cache, as a second request would
    check_s, check = timed(
        lambda: declaration_reads.authenticated_check(deployment, relief_token, check_body)
    )

    rings_checks = []
    for count in (1, 10):
        ring_check = CheckIn.model_validate({"kind": "site", "volumes": centre_points(count)})
        rings_checks.append(
            timed(
                lambda b=ring_check: declaration_reads.authenticated_check(
                    deployment, relief_token, b
                )
            )
        )

    heavy_body = DeclarationIn.model_validate({"kind": "operation", "volumes": shape})
    small_body = DeclarationIn.model_validate(
        {
            "kind": "site",
            "volumes": [
                {
                    "geometry": {"type": "Point", "coordinates": [10.0, 50.0]},
                    "buffer_m": 100,
                    "altitude": {"lower_m": None, "upper_m": 50},
                    "time": {"start": iso(START), "end": None},
                }
            ],
        }
    )
    write_s, write = timed(
        lambda: declarations.create_declaration(deployment, heavy_party, heavy_body)
    )

    # The small write, sent while the heavy one is running, at five points of it: the
    # slowest of the five is reported.
    small_s, small, small_sent_s = 0.0, "ok", 0.0
    for fraction in (0.05, 0.2, 0.4, 0.6, 0.8):
        heavy_thread = threading.Thread(
            target=lambda: timed(
                lambda: declarations.create_declaration(deployment, heavy_party, heavy_body)
            )
        )
        heavy_began = time.perf_counter()
        heavy_thread.start()
        time.sleep(write_s * fraction)
        sent = time.perf_counter() - heavy_began
        took, outcome = timed(
            lambda: declarations.create_declaration(deployment, relief, small_body)
        )
        heavy_thread.join()
        if took >= small_s:
            small_s, small, small_sent_s = took, outcome, sent
    # A small write alone, for comparison.
    alone_s, alone = timed(lambda: declarations.create_declaration(deployment, relief, small_body))
    db.dispose()
    return {
        "label": args.label,
        "stored": f"{args.stored} x {args.volumes} volumes x {args.vertices} vertices",
        "store_s": store_s,
        "validation_s": validation_s,
        "validation": validation,
        "multipolygon_bytes": multi_bytes,
        "multipolygon_s": multi_s,
        "multipolygon": multi_outcome,
        "check_s": check_s,
        "check": check,
        "write_s": write_s,
        "write": write,
        "small_during_heavy_s": small_s,
        "small_during_heavy": small,
        "small_sent_after_s": small_sent_s,
        "small_alone_s": alone_s,
        "ring_point_s": rings_checks[0][0],
        "ring_point": rings_checks[0][1],
        "ring_points_s": rings_checks[1][0],
        "ring_points": rings_checks[1][1],
        "small_alone": alone,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    lines = [
        "| | " + " | ".join(r["label"] for r in rows) + " |",
        "|---|" + "---|" * len(rows),
    ]

    def line(name: str, cell: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"| {name} | " + " | ".join(cell(r) for r in rows) + " |")

    line(
        "validation, 100 polygons of 100 vertices",
        lambda r: f"{r['validation_s']:.3f} s ({r['validation']})",
    )
    line(
        "validation, one MultiPolygon",
        lambda r: (
            f"{r['multipolygon_s']:.3f} s "
            f"({r['multipolygon_bytes'] // 1000} KB, {r['multipolygon']})"
        ),
    )
    line("check of the same shape (humanitarian)", lambda r: f"{r['check_s']:.3f} s ({r['check']})")
    line("write of the same shape (operator)", lambda r: f"{r['write_s']:.3f} s ({r['write']})")
    line(
        "small write during the heavy one (slowest of 5)",
        lambda r: f"{r['small_during_heavy_s']:.3f} s (sent {r['small_sent_after_s']:.2f} s in)",
    )
    line("small write alone", lambda r: f"{r['small_alone_s']:.3f} s")
    line(
        "check: 1 point against the equidistant rings",
        lambda r: f"{r['ring_point_s']:.3f} s ({r['ring_point']})",
    )
    line(
        "check: 10 points against them",
        lambda r: f"{r['ring_points_s']:.3f} s ({r['ring_points']})",
    )
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=20)
    parser.add_argument("--volumes", type=int, default=100)
    parser.add_argument("--vertices", type=int, default=99)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--json", type=Path, help="append the row to this JSON-lines file")
    parser.add_argument("--table", type=Path, help="print the table of every row of this file")
    args = parser.parse_args()
    if args.table:
        rows = [json.loads(line) for line in args.table.read_text().splitlines() if line]
        print_table(rows)
        return
    row = run(args)
    if args.json:
        with args.json.open("a") as out:
            out.write(json.dumps(row) + "\n")
    print_table([row])


if __name__ == "__main__":
    main()
