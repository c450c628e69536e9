"""Conflict checks side by side: ``deconflict bench`` beside the PostGIS and shapely anchors.

Not a test: it prints progress and writes tables. Usage, from the repository root::

    .venv/bin/python benchmarks/anchors.py [--sizes 10000,100000,1000000] [--skip-postgis]

For each N it exports the anchors' workload (seed 42, 1000 queries) with
``../shared/bench/export.py``, runs ``deconflict bench`` on it in a fresh process, runs
``../shared/bench/run.py`` (PostGIS nd4 and shapely) on the same workload, fetches PostGIS's
answers to compare them with deconflict's, and measures every differing pair's margin with
pyproj's ``Geod``. It then rewrites its section of ``benchmarks/README.md`` (between the
``conflict-checks`` markers) from every ``benchmarks/results/N<n>.json`` present, and draws
``benchmarks/results/conflict_checks.png``.

PostgreSQL: ``../shared/bench/setup_env.sh`` tunes the machine's shared cluster with ALTER
SYSTEM (``synchronous_commit=off`` for every database on it) and restarts it, which drops
every other connection. This script does the same tuning on a private cluster instead: its
own data directory under the work directory, a Unix socket only, stopped at the end.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import itertools
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Geod

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "bench"
RESULTS = REPO / "benchmarks" / "results"
README = REPO / "benchmarks" / "README.md"
PLOT = RESULTS / "conflict_checks.png"
START, END = "<!-- conflict-checks:start -->", "<!-- conflict-checks:end -->"
REFERENCE = "pg:nd4"
TOLERANCE = 0.0005  # issue 6: results may differ from PostGIS only within 0.05 % of the threshold

# setup_env.sh's settings, applied to the private cluster only.
PG_SETTINGS = {
    "shared_buffers": "4GB",
    "effective_cache_size": "12GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "2GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "synchronous_commit": "off",
    "random_page_cost": "1.1",
    "jit": "off",
}
PG_PACKAGE = "postgresql-15-postgis-3"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

GEOD = Geod(ellps="WGS84")


def log(*parts: object) -> None:
    print(*parts, flush=True)


# --------------------------------------------------------------------------- PostgreSQL


class PrivatePostgres:
    """A PostgreSQL 15 cluster of our own: peer auth for root, Unix socket in its data dir."""

    def __init__(self, work: Path, port: int) -> None:
        self.data = work / "pgdata"
        self.port = port

    @property
    def env(self) -> dict[str, str]:
        """What libpq needs to find it: run.py and pg_anchor.py connect with "dbname=bench"."""
        return {"PGHOST": str(self.data), "PGPORT": str(self.port)}

    @property
    def dsn(self) -> str:
        return f"host={self.data} port={self.port} dbname=bench"

    def _as_postgres(self, *command: str, check: bool = True) -> int:
        return subprocess.run(["runuser", "-u", "postgres", "--", *command], check=check).returncode

    def start(self) -> None:
        if os.geteuid() != 0:
            sys.exit("PostgreSQL set-up needs root (apt, runuser); or pass --skip-postgis")
        if not Path("/usr/share/postgresql/15/extension/postgis.control").exists():
            log(f"installing {PG_PACKAGE} (apt)")
            subprocess.run(["apt-get", "install", "-y", PG_PACKAGE], check=True)
        if not (self.data / "PG_VERSION").exists():
            log(f"creating a private PostgreSQL cluster in {self.data}")
            self.data.mkdir(parents=True, exist_ok=True)
            shutil.chown(self.data, "postgres", "postgres")
            self._as_postgres(
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "root",
                "--no-locale",
                "-E",
                "UTF8",
                "--auth-local=peer",
                "--auth-host=reject",
            )
            settings = {
                **PG_SETTINGS,
                "port": str(self.port),
                "listen_addresses": "''",
                "unix_socket_directories": f"'{self.data}'",
            }
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write("\n# deconflict benchmarks/anchors.py (setup_env.sh's tuning)\n")
                conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        pg_ctl = str(PG_BIN / "pg_ctl")
        if self._as_postgres(pg_ctl, "-D", str(self.data), "status", check=False) != 0:
            log("starting the private PostgreSQL cluster")
            self._as_postgres(
                pg_ctl, "-D", str(self.data), "-l", str(self.data / "log"), "-w", "start"
            )
        import psycopg

        with psycopg.connect(
            self.dsn.replace("dbname=bench", "dbname=postgres"), autocommit=True
        ) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'bench'").fetchone() is None:
                conn.execute("CREATE DATABASE bench")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def stop(self) -> None:
        log("stopping the private PostgreSQL cluster")
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")


# --------------------------------------------------------------------------- the three runs


def export(n: int, seed: int, nq: int, folder: Path) -> None:
    """The anchors' workload as JSON lines; kept between runs (it is a pure function of n)."""
    stamp = folder / "export.txt"
    identity = f"n,seed,nq {n} {seed} {nq}"
    if stamp.exists() and stamp.read_text().splitlines()[0] == identity:
        log(f"  workload already exported in {folder}")
        return
    log(f"  exporting the workload (N={n:,}, seed {seed}) to {folder}")
    began = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            str(SHARED / "export.py"),
            *("--n", str(n), "--seed", str(seed)),
            *("--nq", str(nq), "--out", str(folder)),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=SHARED,
    )
    stamp.write_text(f"{identity}\n{done.stdout}")
    log(f"  {done.stdout.strip()} in {time.perf_counter() - began:.0f} s")


def run_deconflict(folder: Path) -> dict[str, Any]:
    out = folder / "deconflict.json"
    log("  deconflict bench")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "deconflict",
            "bench",
            "--volumes",
            str(folder / "volumes.jsonl"),
            "--queries",
            str(folder / "queries.jsonl"),
            "--out",
            str(out),
        ],
        check=True,
    )
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def run_anchors(n: int, seed: int, nq: int, folder: Path, pg: PrivatePostgres | None) -> Path:
    methods = "pg,shapely" if pg else "shapely"
    log(f"  anchors ({methods}) with ../shared/bench/run.py")
    env = {**os.environ, **(pg.env if pg else {})}
    subprocess.run(
        [
            sys.executable,
            str(SHARED / "run.py"),
            *("--n", str(n), "--seed", str(seed)),
            *("--nq", str(nq), "--methods", methods, "--pg-variants", "nd4", "--out", str(folder)),
        ],
        check=True,
        env=env,
        cwd=SHARED,
    )
    return folder / f"N{n}.json"


def _anchor_modules() -> tuple[Any, Any]:
    # Reused from where they live, not copied: the workload generator and the SQL of nd4.
    if str(SHARED) not in sys.path:
        sys.path.insert(0, str(SHARED))
    import pg_anchor  # type: ignore[import-not-found]
    import workload  # type: ignore[import-not-found]

    return workload, pg_anchor


def postgis_answers(pg: PrivatePostgres, seed: int, nq: int) -> list[set[int]]:
    """PostGIS nd4's answer to every query (run.py keeps only counts and differences)."""
    import psycopg

    workload, pg_anchor = _anchor_modules()
    queries = workload.queries(nq, seed)
    sql = pg_anchor.query_sql("nd4")
    answers = []
    with psycopg.connect(pg.dsn, autocommit=True, prepare_threshold=0) as conn:
        for number in range(nq):
            rows = conn.execute(sql, pg_anchor.query_params(queries, number)).fetchall()
            answers.append({int(row[0]) for row in rows})
    return answers


# --------------------------------------------------------------------------- margins


def _unit(lon: float, lat: float) -> np.ndarray[Any, Any]:
    lam, phi = math.radians(lon), math.radians(lat)
    return np.array([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)])


def _arc(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any], t: np.ndarray[Any, Any]) -> Any:
    """Lon/lat of the points at fractions ``t`` of the great-circle arc a-b (geodetic lon/lat
    taken as spherical, as PostGIS geography and deconflict take an edge)."""
    omega = math.acos(max(-1.0, min(1.0, float(a @ b))))
    if omega < 1e-15:
        points = np.repeat(a[None, :], len(t), axis=0)
    else:
        points = (np.sin((1 - t) * omega)[:, None] * a + np.sin(t * omega)[:, None] * b) / math.sin(
            omega
        )
    lon = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
    lat = np.degrees(np.arctan2(points[:, 2], np.hypot(points[:, 0], points[:, 1])))
    return lon, lat


def _point_to_edge_m(point: Sequence[float], a: Sequence[float], b: Sequence[float]) -> float:
    """Geodesic (WGS84) distance from a point to a great-circle edge: dense samples, then a
    golden-section search around the nearest one (to well under a millimetre)."""
    ua, ub = _unit(*a), _unit(*b)

    def distances(t: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        lon, lat = _arc(ua, ub, t)
        count = len(t)
        return np.asarray(GEOD.inv(np.full(count, point[0]), np.full(count, point[1]), lon, lat)[2])

    samples = np.linspace(0.0, 1.0, 129)
    sampled = distances(samples)
    best = int(np.argmin(sampled))
    low, high = samples[max(best - 1, 0)], samples[min(best + 1, len(samples) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(48):
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if distances(np.array([left]))[0] < distances(np.array([right]))[0]:
            high = right
        else:
            low = left
    return float(min(sampled[best], distances(np.array([(low + high) / 2]))[0]))


def _vertices_and_edges(geometry: Any) -> tuple[list[tuple[float, float]], list[Any]]:
    if geometry.geom_type == "Polygon":
        rings = [geometry.exterior, *geometry.interiors]
        vertices = [tuple(c) for ring in rings for c in ring.coords[:-1]]
        edges = [(r.coords[k], r.coords[k + 1]) for r in rings for k in range(len(r.coords) - 1)]
        return vertices, edges
    coords = [tuple(c) for c in geometry.coords]
    return coords, list(itertools.pairwise(coords))


def geodesic_distance_m(first: Any, second: Any) -> float:
    """Brute-force reference distance between two lon/lat shapely geometries on WGS84.

    Geometries that intersect (a planar lon/lat test: enough for this regional workload and for
    pairs near a 10 km threshold) are 0 apart; otherwise the closest pair has a vertex of one
    at one end, so it is the least vertex-vertex or vertex-edge geodesic distance.
    """
    if shapely.intersects(first, second):
        return 0.0
    va, ea = _vertices_and_edges(first)
    vb, eb = _vertices_and_edges(second)
    pa, pb = np.array(va), np.array(vb)
    lon1, lon2 = np.meshgrid(pa[:, 0], pb[:, 0])
    lat1, lat2 = np.meshgrid(pa[:, 1], pb[:, 1])
    best = float(np.min(GEOD.inv(lon1.ravel(), lat1.ravel(), lon2.ravel(), lat2.ravel())[2]))
    for vertices, edges in ((va, eb), (vb, ea)):
        for vertex in vertices:
            for a, b in edges:
                best = min(best, _point_to_edge_m(vertex, a, b))
    return best


def differences(
    deconflict: dict[str, list[str]], postgis: list[set[int]], pg: PrivatePostgres, seed: int
) -> dict[str, Any]:
    """The cross-check of deconflict against PostGIS nd4, in run.py's ``checks`` format, with
    every differing pair's margin by pyproj Geod (plus PostGIS's and deconflict's distance)."""
    import psycopg

    from deconflict.geo.distance import min_distance_m
    from deconflict.geo.geojson import parse_geometry

    workload, _ = _anchor_modules()
    queries = workload.queries(len(postgis), seed)
    pairs: list[tuple[int, int, str]] = []
    queries_differing = 0
    for number, reference in enumerate(postgis):
        ours = {int(i.removeprefix("v")) for i in deconflict[f"q{number + 1}"]}
        if ours != reference:
            queries_differing += 1
        pairs += [(number, i, "only_ref") for i in sorted(reference - ours)]
        pairs += [(number, i, "only_other") for i in sorted(ours - reference)]
    check: dict[str, Any] = {
        "ref": REFERENCE,
        "other": "deconflict",
        "queries_differing": queries_differing,
        "only_ref": sum(side == "only_ref" for _, _, side in pairs),
        "only_other": sum(side == "only_other" for _, _, side in pairs),
        "total_ref": sum(map(len, postgis)),
        "margins_by": "pyproj Geod (WGS84), great-circle edges",
        "examples": [],
    }
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        for number, stored_id, side in pairs[:200]:
            query = queries.geoms[number]
            row = conn.execute(
                "SELECT ST_AsBinary(g::geometry), buf, ST_Distance(g, %s::geography) "
                "FROM vol_nd4 WHERE id = %s",
                (shapely.to_wkb(query, hex=True), stored_id),
            ).fetchone()
            assert row is not None, stored_id
            wkb, buffer_m, postgis_m = row
            stored = shapely.from_wkb(bytes(wkb))
            geodesic_m = geodesic_distance_m(query, stored)
            ours_m = min_distance_m(
                parse_geometry(json.loads(shapely.to_geojson(query)), "query"),
                parse_geometry(json.loads(shapely.to_geojson(stored)), "stored"),
            )
            threshold = float(buffer_m) + float(queries.buf[number]) + workload.SEP_H
            check["examples"].append(
                {
                    "q": number,
                    "id": stored_id,
                    "side": side,
                    "geodesic_m": round(geodesic_m, 3),
                    "threshold_m": threshold,
                    "margin_m": round(geodesic_m - threshold, 3),
                    "rel": round((geodesic_m - threshold) / threshold, 7),
                    "postgis_m": round(float(postgis_m), 3),
                    "deconflict_m": round(ours_m, 3),
                }
            )
    if check["examples"]:
        check["max_abs_margin_m"] = max(abs(e["margin_m"]) for e in check["examples"])
        check["max_abs_rel"] = max(abs(e["rel"]) for e in check["examples"])
    return check


# --------------------------------------------------------------------------- results


def engine_modules() -> list[Path]:
    """The engine's sources: the bench module and every deconflict module it imports,
    transitively (so new engine modules count without editing this list)."""
    package = REPO / "src" / "deconflict"
    found: set[Path] = set()
    pending = [package / "bench.py"]
    while pending:
        path = pending.pop()
        if path in found or not path.exists():
            continue
        found.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("deconflict."):
                    module = package.joinpath(*name.split(".")[1:])
                    pending += [module.with_suffix(".py"), module / "__init__.py"]
    return sorted(found)


def engine_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in engine_modules():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def machine() -> dict[str, Any]:
    with open("/proc/meminfo") as meminfo:
        kib = int(meminfo.readline().split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(kib / 2**20),
        "kernel": platform.release(),
        "python": platform.python_version(),
        # Other work on the machine skews every method; the lead re-runs on a quiet one.
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def combine(
    n: int,
    anchors_file: Path,
    ours: dict[str, Any],
    check: dict[str, Any] | None,
    note: str,
    host: dict[str, Any],
    fingerprint: str,
) -> dict[str, Any]:
    """run.py's N<n>.json with a deconflict row and its cross-check added."""
    combined: dict[str, Any] = json.loads(anchors_file.read_text())
    latencies = {"p50_ms": ours["p50_ms"], "p99_ms": ours["p99_ms"]}
    combined["rows"].insert(
        0,
        {
            "method": "deconflict",
            "exact": True,
            **latencies,
            "mean_results": ours["mean_conflicts"],
            "qps": None,
            "qps_1client": ours["checks_per_s"],
            "load_s": ours["load_s"],
            "validate_s": ours["validate_s"],
            "bytes_per_volume": ours["bytes_per_volume"],
            "load_method": ours["load_method"],
            "check_method": ours["check_method"],
        },
    )
    for row in combined["rows"]:
        if row["method"].startswith("pg:") and "size_mb" in row:
            row["bytes_per_volume"] = row["size_mb"] * 2**20 / n
    if check is not None:
        combined["checks"].insert(0, check)
    combined["meta"].update(
        measured=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        engine_fingerprint=fingerprint,
        engine_note=note,
        machine=host,
    )
    return combined


def stored_results() -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in RESULTS.glob("N*.json")]
    return sorted(found, key=lambda r: int(r["meta"]["n"]))


# --------------------------------------------------------------------------- README and plot

METHODS = ("deconflict", REFERENCE, "shapely")
LABELS = {"deconflict": "deconflict", REFERENCE: "PostGIS nd4", "shapely": "shapely (approx.)"}


def _row(result: dict[str, Any], method: str) -> dict[str, Any] | None:
    return next((r for r in result["rows"] if r["method"] == method), None)


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def plot(results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=110)
    for colour, method in zip(("tab:green", "tab:blue", "tab:orange"), METHODS, strict=True):
        points = [(r["meta"]["n"], _row(r, method)) for r in results]
        sizes = [n for n, row in points if row]
        rows = [row for _, row in points if row]
        if not rows:
            continue
        axes.plot(
            sizes, [r["p50_ms"] for r in rows], "o-", color=colour, label=f"{LABELS[method]} p50"
        )
        axes.plot(
            sizes, [r["p99_ms"] for r in rows], "s--", color=colour, label=f"{LABELS[method]} p99"
        )
    axes.plot([1e6], [0.35], "k*", markersize=11, label="target at 1M: p50 0.35 ms")
    axes.plot([1e6], [2.0], "kx", markersize=9, label="target at 1M: p99 2 ms")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("stored volumes N")
    axes.set_ylabel("ms per check (one client)")
    axes.set_title("One conflict check among N stored volumes (seed 42, 1000 queries)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    figure.savefig(PLOT)
    plt.close(figure)


def _table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| N | method | load s | p50 ms | p99 ms | checks/s (1 client) | q/s (2 procs) "
        "| bytes/volume | mean results |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        n = result["meta"]["n"]
        for method in METHODS:
            row = _row(result, method)
            if row is None:
                continue
            lines.append(
                f"| {n:,} | {LABELS[method]} | {_number(row.get('load_s'), 1)} "
                f"| {_number(row['p50_ms'])} | {_number(row['p99_ms'])} "
                f"| {_number(row.get('qps_1client'), 0)} | {_number(row.get('qps'), 0)} "
                f"| {_number(row.get('bytes_per_volume'), 0)} | {row['mean_results']:.2f} |"
            )
    return lines


def _ratios(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| N | p50 speed-up vs PostGIS | p99 speed-up vs PostGIS | p50 vs shapely "
        "| p99 vs shapely |",
        "|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        ours, reference, shapely_row = (_row(result, m) for m in METHODS)
        if ours is None:
            continue

        def ratio(other: dict[str, Any] | None, key: str, ours: dict[str, Any] = ours) -> str:
            return "-" if other is None else f"{other[key] / ours[key]:.2f}x"

        lines.append(
            f"| {result['meta']['n']:,} | {ratio(reference, 'p50_ms')} "
            f"| {ratio(reference, 'p99_ms')} | {ratio(shapely_row, 'p50_ms')} "
            f"| {ratio(shapely_row, 'p99_ms')} |"
        )
    return lines


def _differences(results: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    pairs: list[str] = []
    for result in results:
        n = result["meta"]["n"]
        check = next((c for c in result["checks"] if c["other"] == "deconflict"), None)
        if check is None:
            lines.append(f"- N = {n:,}: not compared (run without PostGIS).")
            continue
        lines.append(
            f"- N = {n:,}: {check['queries_differing']} of {result['meta']['nq']} queries "
            f"differ; {check['only_ref']} pairs only in PostGIS, {check['only_other']} only in "
            f"deconflict, of {check['total_ref']:,} PostGIS pairs."
        )
        for e in check["examples"]:
            inside = "yes" if abs(e["rel"]) <= TOLERANCE else "**no**"
            side = "PostGIS" if e["side"] == "only_ref" else "deconflict"
            pairs.append(
                f"| {n:,} | q{e['q'] + 1} | v{e['id']} | {side} | {e['geodesic_m']:,.3f} "
                f"| {e['threshold_m']:,.0f} | {e['margin_m']:+.3f} | {e['rel'] * 100:+.5f} % "
                f"| {e['postgis_m']:,.3f} | {e['deconflict_m']:,.3f} | {inside} |"
            )
    if pairs:
        lines += [
            "",
            "| N | query | volume | found only by | geodesic m (Geod) | threshold m | margin m "
            "| margin / threshold | PostGIS m | deconflict m | within 0.05 % |",
            "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|",
            *pairs,
        ]
    return lines


USAGE = """\
## Conflict checks: deconflict beside PostGIS and shapely

`benchmarks/anchors.py` runs one workload (seed 42 of `../shared/bench/workload.py`: circles,
corridors and star polygons over 7 by 5.5 degrees, ground and airborne bands, 30 days,
1000 queries) at each N through three methods in one run, one after the other on the same
machine:

- **deconflict**: `deconflict bench` in a fresh process. It first validates every line as the
  API validates a volume (its time is in `N<n>.json` as `validate_s`, not in the load: the
  service pays it when a declaration is written). Then it loads the volume documents into the
  service's own index with `ConflictIndex.put_many`, as a restart loads stored rows, as
  operations of distinct owners under the default policy (9,260 m, 300 m), and times each
  query's what-if check (`conflicting_ids`) after 100 warm-up queries. Load time counts
  reading the JSON lines and building the index; bytes/volume is the growth of the resident
  set over the load, divided by N. Since issue 13 it also holds, loaded after those are
  measured, one protected site or movement on the ground per 20 volumes ("Protected
  declarations in the benchmark" below): their conflicts are reported apart, so the
  answers compared with PostGIS are the operations' alone.
- **PostGIS nd4**: `../shared/bench/run.py --pg-variants nd4`, the fastest exact formulation
  (one 4-D N-D GiST prefilter, then `ST_DWithin` on geography), prepared statements from one
  client; bytes/volume is the table and index size on disk.
- **shapely**: the same run's STRtree and projected `dwithin` anchor (approximate near the
  threshold).

Then it fetches PostGIS's answer to every query, compares it with deconflict's, and measures
each pair they disagree on with pyproj's `Geod` (WGS84, great-circle edges): the margin is
the geodesic distance minus the threshold (both buffers plus 9,260 m), relative to the
threshold. Issue 6 allows differences only within 0.05 %.

Issue 6's targets at 1M, on this 2-core machine: p50 at most 0.35 ms and p99 at most 2 ms
(20x PostGIS, measured in the same run), a load in at most 30 s, at most 1.5 KB a volume.
Other work on the machine slows every method, unevenly: the load average is shown per N;
quote numbers from a run on a quiet machine.

### Run it

```bash
# from the repository root, as root (PostgreSQL set-up), with ../shared/bench beside the repo
.venv/bin/python benchmarks/anchors.py                        # 10k, 100k and 1M
.venv/bin/python benchmarks/anchors.py --sizes 10000,100000   # a subset
.venv/bin/python benchmarks/anchors.py --skip-postgis         # deconflict and shapely only
.venv/bin/python benchmarks/anchors.py --readme-only          # redraw this section and the plot
deconflict bench --volumes V.jsonl --queries Q.jsonl --out R.json   # one run by hand
```

Exported workloads are kept in `--work` (default `/tmp/deconflict-anchors`, about 0.3 GB at
1M). Each N writes `benchmarks/results/N<n>.json` (run.py's document plus a deconflict row
and its cross-check); this section is rebuilt from all of them, so re-running one N replaces
its rows only. PostgreSQL runs in a private cluster (`--work`/pgdata, Unix socket only,
setup_env.sh's tuning: shared_buffers 4GB, work_mem 64MB, jit off, synchronous_commit off,
...), started for the run and stopped after it; `setup_env.sh` itself is not used because it
changes and restarts the machine's shared cluster.
"""


def _engine(result: dict[str, Any]) -> str:
    """The engine as the README names it: the note given to the run, and how it was driven."""
    ours = _row(result, "deconflict") or {}
    return (
        f"{result['meta']['engine_note']}; index loaded with "
        f"`{ours.get('load_method', '?')}`, checked with `{ours.get('check_method', '?')}`"
    )


def _provenance(results: list[dict[str, Any]]) -> list[str]:
    """Where, when and on which engine the numbers were measured."""
    latest = results[-1]["meta"]
    env, host = latest["env"], latest["machine"]
    versions = (
        f"PostgreSQL {env['postgres']}, PostGIS {env['postgis']}, " if "postgis" in env else ""
    )
    lines = [
        f"Machine: {host['cpus']} cores, {host['memory_gb']} GB, Linux {host['kernel']}; Python "
        f"{host['python']}, {versions}shapely {env['shapely']}, GEOS {env['geos']}.",
        "",
    ]
    engines = {_engine(r) for r in results}
    if len(engines) == 1:
        lines += [f"Engine: {engines.pop()}.", ""]
    current = engine_fingerprint()
    for result in results:
        meta = result["meta"]
        fingerprint = meta["engine_fingerprint"]
        stale = "" if fingerprint == current else " (**changed since: re-run**)"
        each = "" if len(engines) <= 1 else f"; engine: {_engine(result)}"
        lines.append(
            f"- N = {meta['n']:,}: measured {meta['measured']}, machine load average "
            f"{meta['machine']['load_average_1min']} when it began; engine sources "
            f"`{fingerprint}`{stale}{each}."
        )
    return lines


def section(results: list[dict[str, Any]]) -> str:
    lines = [USAGE, "### Results", ""]
    if not results:
        return "\n".join([*lines, "No results yet: run `benchmarks/anchors.py`.", ""])
    lines += _provenance(results)
    ratios = (
        "Ratios: PostGIS or shapely time / deconflict time (issue 6's target: 20x PostGIS at 1M)."
    )
    image = f"![p50 and p99 against N]({PLOT.relative_to(README.parent)})"
    lines += ["", *_table(results), "", ratios, "", *_ratios(results), "", image, ""]
    lines += ["### Where deconflict and PostGIS differ", "", *_differences(results), ""]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    block = f"{START}\n{text.rstrip()}\n{END}"
    if not README.exists():
        README.write_text(f"# Benchmarks\n\n{block}\n")
        return
    current = README.read_text()
    if START in current and END in current:
        before, rest = current.split(START, 1)
        after = rest.split(END, 1)[1]
        README.write_text(before + block + after)
    else:
        README.write_text(current.rstrip() + "\n\n" + block + "\n")


# --------------------------------------------------------------------------- main


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part]


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--skip-postgis", action="store_true", help="deconflict and shapely only")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--nq", type=int, default=1000, help="queries per N")
    parser.add_argument("--work", type=Path, default=Path("/tmp/deconflict-anchors"))
    parser.add_argument("--pg-port", type=int, default=5433, help="private cluster's socket port")
    parser.add_argument("--keep-postgres", action="store_true", help="leave the cluster running")
    parser.add_argument(
        "--engine-note",
        default="as of this writing",
        help="how the README names the engine these numbers are for",
    )
    parser.add_argument("--readme-only", action="store_true", help="rebuild README and plot")
    return parser.parse_args(list(argv) if argv is not None else None)


def main(argv: Iterable[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.readme_only:
        if not SHARED.exists():
            sys.exit(f"{SHARED} is missing: the anchors live beside the repository")
        pg = None if args.skip_postgis else PrivatePostgres(args.work, args.pg_port)
        if pg:
            pg.start()
        try:
            for n in args.sizes:
                began = time.perf_counter()
                log(f"N = {n:,}")
                # Taken before deconflict runs: the engine's sources may change meanwhile.
                host, fingerprint = machine(), engine_fingerprint()
                folder = args.work / f"N{n}"
                export(n, args.seed, args.nq, folder)
                ours = run_deconflict(folder)
                anchors_file = run_anchors(n, args.seed, args.nq, folder / "anchors", pg)
                check = None
                if pg:
                    log("  comparing deconflict's answers with PostGIS's")
                    answers = postgis_answers(pg, args.seed, args.nq)
                    check = differences(ours["queries"], answers, pg, args.seed)
                    log(
                        f"  {check['queries_differing']} queries differ "
                        f"({check['only_ref']} pairs only in PostGIS, "
                        f"{check['only_other']} only in deconflict)"
                    )
                combined = combine(
                    n, anchors_file, ours, check, args.engine_note, host, fingerprint
                )
                RESULTS.mkdir(parents=True, exist_ok=True)
                (RESULTS / f"N{n}.json").write_text(json.dumps(combined, indent=1, default=float))
                log(f"  N = {n:,} done in {time.perf_counter() - began:.0f} s")
        finally:
            if pg and not args.keep_postgres:
                pg.stop()
    results = stored_results()
    plot(results)
    write_readme(section(results))
    log(f"wrote {README.relative_to(REPO)} and {PLOT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
