"""Declaration writes per second, and their latency, through real ``deconflict serve`` processes.

Prints tables; not a test. For each backend (PostgreSQL, SQLite), each number of ``serve``
processes on one database (1, 2, 4) and each kind of traffic, a fresh database is created,
the processes are started, and concurrent client threads declare a fixed number of operations:

- spread: operations all over a theatre the size of Syria; they rarely conflict;
- congested: every operation in one circle 20 km across, in one 6-hour window; each one
  conflicts with many others, so clients must send keys.

Each client does what the web page does: it sends its declaration with an empty key and, on
409 ``missing_awareness``, adds the versions it missed to the key and sends it again, until
it is accepted. A write's latency runs from its first attempt to its 201; retries are counted.

Usage (from the repository root):
    .venv/bin/python benchmarks/writes.py                 # everything, about 5 minutes
    .venv/bin/python benchmarks/writes.py --writes 100 --backends sqlite --processes 1 2
Options: --writes N per configuration (400), --clients N concurrent threads (8), --parties N
operators the writes are shared among (8; a party never conflicts with itself), --processes,
--backends, --traffic, --seed, --no-readme (do not rewrite the table in README.md),
--source-label. The ``serve`` processes run the deconflict this Python imports (PYTHONPATH
is passed on), so another commit can be measured from an exported copy of its ``src``.
PostgreSQL databases are created and dropped through DECONFLICT_BENCH_POSTGRES (default
postgresql:///postgres; the role must be allowed to create databases).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
RESULTS = HERE / "results"
TABLE_START = "<!-- writes-table:start -->"
TABLE_END = "<!-- writes-table:end -->"
DECONFLICT = [sys.executable, "-m", "deconflict"]
POSTGRES_ADMIN = os.environ.get("DECONFLICT_BENCH_POSTGRES", "postgresql:///postgres")

# Operations start three days ahead, beyond every minimum notice.
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
CONGESTED_CENTRE = (37.16, 36.20)  # lon, lat
CONGESTED_RADIUS_M = 10_000  # a circle 20 km across
EARTH_RADIUS_M = 6_371_000


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the workloads ----------------------------------------------------------------------


def spread_volume(rng: np.random.Generator) -> dict[str, Any]:
    """Anywhere in lon 35.5 to 42.5, lat 32 to 37.5 (check_latency.py's theatre): a point
    with a 1 to 20 km buffer or a small polygon, an altitude band, and a window of 10 min to
    12 h within 30 days."""
    lon, lat = float(rng.uniform(35.5, 42.5)), float(rng.uniform(32.0, 37.5))
    if rng.random() < 0.7:
        geometry: dict[str, Any] = {"type": "Point", "coordinates": [lon, lat]}
        buffer_m = float(rng.uniform(1000, 20_000))
    else:
        radius = float(rng.uniform(0.01, 0.15))
        ring = [
            [
                lon + radius * math.cos(2 * math.pi * k / 6),
                lat + radius * math.sin(2 * math.pi * k / 6),
            ]
            for k in range(6)
        ]
        geometry = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        buffer_m = float(rng.uniform(0, 2000))
    lower = float(rng.uniform(0, 8000))
    start = START + timedelta(seconds=int(rng.integers(0, 30 * 86400)))
    return volume(
        geometry,
        buffer_m,
        lower,
        lower + float(rng.uniform(300, 4000)),
        start,
        minutes=float(rng.uniform(10, 720)),
    )


def congested_volume(rng: np.random.Generator) -> dict[str, Any]:
    """A point within 10 km of one centre, a 0.5 to 2 km buffer, a band in the lowest 4.5 km,
    a window of 30 to 120 min starting within the same 6 hours."""
    distance = CONGESTED_RADIUS_M * math.sqrt(float(rng.random()))
    bearing = float(rng.uniform(0, 2 * math.pi))
    lon0, lat0 = CONGESTED_CENTRE
    lat = lat0 + math.degrees(distance * math.cos(bearing) / EARTH_RADIUS_M)
    lon = lon0 + math.degrees(
        distance * math.sin(bearing) / (EARTH_RADIUS_M * math.cos(math.radians(lat0)))
    )
    lower = float(rng.uniform(0, 3000))
    start = START + timedelta(minutes=int(rng.integers(0, 6 * 60)))
    return volume(
        {"type": "Point", "coordinates": [lon, lat]},
        float(rng.uniform(500, 2000)),
        lower,
        lower + float(rng.uniform(300, 1500)),
        start,
        minutes=float(rng.uniform(30, 120)),
    )


def volume(
    geometry: dict[str, Any],
    buffer_m: float,
    lower_m: float,
    upper_m: float,
    start: datetime,
    *,
    minutes: float,
) -> dict[str, Any]:
    return {
        "geometry": geometry,
        "buffer_m": round(buffer_m),
        "altitude": {"lower_m": round(lower_m), "upper_m": round(upper_m)},
        "time": {"start": iso(start), "end": iso(start + timedelta(minutes=minutes))},
    }


WORKLOADS = {"spread": spread_volume, "congested": congested_volume}


# -- databases and processes ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def fresh_database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    import psycopg

    name = f"deconflict_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def init(db_url: str, tmp: Path) -> tuple[str, str]:
    """``deconflict init``; returns the coordinator's token and the log's public key."""
    done = subprocess.run(
        [
            *DECONFLICT,
            "init",
            "--db",
            db_url,
            "--key-file",
            str(tmp / "log.key"),
            "--policy",
            str(tmp / "policy.toml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    printed = json.loads(done.stdout)
    return printed["coordinator_token"], printed["log_public_key"]


@contextmanager
def serving(db_url: str, tmp: Path, number: int, public_key: str) -> Iterator[str]:
    """A ``deconflict serve`` process; yields its base URL. Its stderr goes to a file."""
    for attempt in range(3):
        port = free_port()
        log_file = tmp / f"serve-{number}-{attempt}.log"
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                # One worker each: the table counts processes.
                [
                    *DECONFLICT,
                    "serve",
                    "--db",
                    db_url,
                    "--port",
                    str(port),
                    "--log-level",
                    "error",
                    "--workers",
                    "1",
                ],
                env={**os.environ, "DECONFLICT_KEY_FILE": str(tmp / "log.key")},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            if wait_until_up(base, process, public_key):
                yield base
                return
            output = log_file.read_text("utf-8", "replace")
            # Another program may take the free port between our look and serve's bind.
            if "address already in use" not in output:
                raise RuntimeError(f"serve {number} did not come up:\n{output}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    raise RuntimeError(f"serve {number} found no free port")


def wait_until_up(base: str, process: subprocess.Popen[bytes], public_key: str) -> bool:
    """Whether the process came up; its log's public key tells it from whatever else might
    answer on that port."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base}/v1/log/public-key", timeout=1)
            if answer.status_code == 200 and answer.json()["public_key"] == public_key:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


# -- one configuration ------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    processes: int
    traffic: str
    clients: int
    parties: int
    writes: int
    seconds: float
    attempts: int
    errors: int
    latencies_ms: list[float] = field(repr=False)
    conflicts: list[int] = field(repr=False)

    @property
    def writes_per_s(self) -> float:
        return self.writes / self.seconds

    @property
    def retries_per_write(self) -> float:
        return (self.attempts - self.writes - self.errors) / max(self.writes, 1)

    def percentile(self, p: float) -> float:
        return float(np.percentile(self.latencies_ms, p)) if self.latencies_ms else math.nan

    def summary(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("latencies_ms", "conflicts")},
            "writes_per_s": round(self.writes_per_s, 1),
            "p50_ms": round(self.percentile(50), 1),
            "p95_ms": round(self.percentile(95), 1),
            "p99_ms": round(self.percentile(99), 1),
            "max_ms": round(max(self.latencies_ms, default=math.nan), 1),
            "retries_per_write": round(self.retries_per_write, 2),
            "mean_conflicts": round(statistics.fmean(self.conflicts or [0]), 1),
            "max_conflicts": max(self.conflicts, default=0),
        }


def run_configuration(
    backend: str,
    processes: int,
    traffic: str,
    *,
    writes: int,
    clients: int,
    parties: int,
    seed: int,
) -> Result:
    rng = np.random.default_rng(seed)
    documents = [WORKLOADS[traffic](rng) for _ in range(writes)]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deconflict-bench-")))
        db_url = stack.enter_context(fresh_database(backend, tmp))
        coordinator, public_key = init(db_url, tmp)
        bases = [stack.enter_context(serving(db_url, tmp, n, public_key)) for n in range(processes)]
        tokens = [register(bases[0], coordinator, f"Air Wing {n}") for n in range(parties)]
        warm_up(bases, tokens[0])
        return drive(backend, processes, traffic, bases, clients, tokens, documents)


def register(base: str, coordinator: str, name: str) -> str:
    answer = httpx.post(
        f"{base}/v1/parties",
        json={"name": name, "role": "operator"},
        headers={"Authorization": f"Bearer {coordinator}"},
        timeout=30,
    )
    answer.raise_for_status()
    token: str = answer.json()["token"]
    return token


def warm_up(bases: list[str], token: str) -> None:
    """One write per process, far from every workload, so that no process's first (slower)
    request is timed."""
    for n, base in enumerate(bases):
        place = {"type": "Point", "coordinates": [10.0 + n, 10.0]}
        document = volume(place, 1000, 0, 1000, START, minutes=60)
        httpx.post(
            f"{base}/v1/declarations",
            json={"kind": "operation", "volumes": [document]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).raise_for_status()


def drive(
    backend: str,
    processes: int,
    traffic: str,
    bases: list[str],
    clients: int,
    tokens: list[str],
    documents: list[dict[str, Any]],
) -> Result:
    """Client c speaks to process c mod P; clients take the next write in turn, and write j
    is declared by party j mod the number of parties."""
    jobs = iter(range(len(documents)))
    jobs_lock = threading.Lock()
    latencies: list[float] = []
    conflicts: list[int] = []
    counts = {"attempts": 0, "errors": 0}
    counts_lock = threading.Lock()

    def next_job() -> int | None:
        with jobs_lock:
            return next(jobs, None)

    def client(c: int) -> None:
        with httpx.Client(base_url=bases[c % len(bases)], timeout=120) as http:
            while (job := next_job()) is not None:
                headers = {"Authorization": f"Bearer {tokens[job % len(tokens)]}"}
                key: list[str] = []
                began = time.perf_counter()
                for attempt in itertools.count(1):
                    answer = http.post(
                        "/v1/declarations",
                        json={"kind": "operation", "volumes": [documents[job]], "key": key},
                        headers=headers,
                    )
                    body = answer.json()
                    if answer.status_code == 409 and body.get("code") == "missing_awareness":
                        key += [m["version"] for m in body["missing"]]
                        continue
                    elapsed_ms = (time.perf_counter() - began) * 1000
                    with counts_lock:
                        counts["attempts"] += attempt
                        if answer.status_code == 201:
                            latencies.append(elapsed_ms)
                            conflicts.append(len(body["conflicts"]))
                        else:
                            counts["errors"] += 1
                            print(f"write {job}: {answer.status_code} {answer.text[:200]}")
                    break

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client, c) for c in range(clients)]:
            future.result()
    seconds = time.perf_counter() - began
    return Result(
        backend=backend,
        processes=processes,
        traffic=traffic,
        clients=clients,
        parties=len(tokens),
        writes=len(latencies),
        seconds=seconds,
        attempts=counts["attempts"],
        errors=counts["errors"],
        latencies_ms=latencies,
        conflicts=conflicts,
    )


# -- reporting --------------------------------------------------------------------------

COLUMNS = [
    ("backend", "backend"),
    ("processes", "serve processes"),
    ("traffic", "traffic"),
    ("writes_per_s", "writes/s"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("p99_ms", "p99 ms"),
    ("max_ms", "max ms"),
    ("retries_per_write", "retries/write"),
    ("mean_conflicts", "conflicts/write"),
]


def machine(label: str | None) -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    postgres = "unavailable"
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = str(row[0]) if row else "unknown"
    except Exception as exc:  # the report says so; the SQLite half still runs
        postgres = f"unavailable ({type(exc).__name__})"
    return {
        "source": label or source(),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H%MZ"),
        # The machine may be shared: the load average says how busy it was besides.
        "load_average_before": round(os.getloadavg()[0], 1),
    }


def source() -> str:
    """Which deconflict the ``serve`` processes run: its commit, or its folder."""
    found = subprocess.run(
        [sys.executable, "-c", "import deconflict; print(deconflict.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    package = Path(found.stdout.strip()).parent
    described = subprocess.run(
        ["git", "-C", str(package), "describe", "--always", "--dirty", "--exclude", "*"],
        capture_output=True,
        text=True,
    )
    if described.returncode != 0:
        return f"deconflict from {package}"
    return f"deconflict at commit {described.stdout.strip()}"


def print_table(results: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="declaration writes through deconflict serve")
    for name, title in COLUMNS:
        table.add_column(title, justify="left" if name in ("backend", "traffic") else "right")
    for row in results:
        table.add_row(*(str(row[name]) for name, _ in COLUMNS))
    console.print(table)


def markdown_table(results: list[dict[str, Any]], about: dict[str, Any], args: Any) -> str:
    lines = [
        f"Measured {about['date']} ({about['source']}) on {about['cores']} cores "
        f"({about['cpu']}), Python "
        f"{about['python']}, PostgreSQL {about['postgresql']}, SQLite {about['sqlite']}; "
        f"{args.writes} writes per configuration by {args.parties} operators from "
        f"{args.clients} client threads on the "
        "same machine, each configuration on a fresh database; 1-minute load average "
        f"{about['load_average_before']} before the run, {about['load_average_after']} after.",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" if n in ("backend", "traffic") else "---:" for n, _ in COLUMNS) + "|",
    ]
    for row in results:
        lines.append("| " + " | ".join(str(row[name]) for name, _ in COLUMNS) + " |")
    return "\n".join(lines)


def write_readme(table: str) -> None:
    text = README.read_text("utf-8")
    head, found, rest = text.partition(TABLE_START)
    _, found_end, tail = rest.partition(TABLE_END)
    if not (found and found_end):
        raise SystemExit(f"{README} lacks the markers {TABLE_START} … {TABLE_END}")
    README.write_text(f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--parties", type=int, default=8)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--traffic", nargs="+", default=["spread", "congested"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument(
        "--source-label",
        default=None,
        help="what to call the deconflict under test in the report, e.g. when it runs from "
        "an exported commit through PYTHONPATH (default: git describe of its folder)",
    )
    args = parser.parse_args()

    console = Console(width=max(Console().width, 140))
    about = machine(args.source_label)
    console.print(about)
    results: list[dict[str, Any]] = []
    for traffic in args.traffic:
        for backend in args.backends:
            for processes in args.processes:
                console.print(f"[bold]{backend}[/], {processes} process(es), {traffic} …")
                result = run_configuration(
                    backend,
                    processes,
                    traffic,
                    writes=args.writes,
                    clients=args.clients,
                    parties=args.parties,
                    seed=args.seed,
                )
                results.append(result.summary())
                console.print(results[-1])
    about["load_average_after"] = round(os.getloadavg()[0], 1)
    print_table(results, console)

    RESULTS.mkdir(exist_ok=True)
    raw = RESULTS / f"writes-{about['started']}.json"
    raw.write_text(json.dumps({"machine": about, "results": results}, indent=2) + "\n", "utf-8")
    console.print(f"raw results: {raw}")
    if not args.no_readme:
        write_readme(markdown_table(results, about, args))
        console.print(f"table written to {README}")


if __name__ == "__main__":
    main()
