"""Imports per second: ``service.imports.import_rows`` on SQLite and PostgreSQL, in-process.

Prints a table; not a test. For each backend and each size (1,000 and 10,000 rows) a fresh
deployment is made with four operators, two humanitarian organisations and an observer (so
each site is broadcast to four operators and padded for the rest, as in a real deployment),
and one humanitarian imports that many sites spread over a theatre the size of Syria: first
as a dry run, then for real. "One request per row" is the figure before chunked commits:
the same rows through the same service function, one call (one write transaction) per row,
which is what a client that POSTs every row separately costs the service, HTTP aside.

Usage (from the repository root):
    .venv/bin/python benchmarks/imports.py                         # everything
    .venv/bin/python benchmarks/imports.py --sizes 1000 --backends sqlite --no-per-row
PostgreSQL databases are created and dropped through DECONFLICT_BENCH_POSTGRES (default
postgresql:///postgres; the role must be allowed to create databases).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from deconflict.importing import ImportRow
from deconflict.service.bootstrap import initialise
from deconflict.service.deployment import Deployment
from deconflict.service.imports import ImportResult, import_rows
from deconflict.service.parties import Party, register_party
from deconflict.storage.database import Database

POSTGRES_ADMIN = os.environ.get("DECONFLICT_BENCH_POSTGRES", "postgresql:///postgres")
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)


def site_rows(count: int, seed: int, prefix: str = "site") -> list[ImportRow]:
    """Sites anywhere in lon 35.5 to 42.5, lat 32 to 37.5, as a CSV's rows read."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(1, count + 1):
        lon, lat = float(rng.uniform(35.5, 42.5)), float(rng.uniform(32.0, 37.5))
        external_id = f"{prefix}-{n}"
        document: dict[str, Any] = {
            "kind": "site",
            "volumes": [
                {
                    "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
                    "buffer_m": 100,
                    "altitude": {"lower_m": None, "upper_m": 50},
                    "time": {"start": START.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": None},
                }
            ],
            "category": "hospital",
            "metadata": {"name": f"Site {n}", "external_id": external_id},
        }
        rows.append(ImportRow(n, document, external_id))
    return rows


@contextmanager
def database_url(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}"
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


@contextmanager
def deployment_with_parties(backend: str, folder: Path) -> Iterator[tuple[Deployment, Party]]:
    with database_url(backend, folder) as url:
        db = Database(url)
        key = folder / f"{uuid.uuid4().hex}.key"
        initialise(db, key, folder / f"{uuid.uuid4().hex}.toml")
        deployment = Deployment(db, key)
        with deployment.writing() as write:
            roles = ["operator"] * 4 + ["humanitarian"] * 2 + ["observer"]
            made = [
                register_party(write, name=f"{role} {n}", role=role, actor=None)  # type: ignore[arg-type]
                for n, role in enumerate(roles)
            ]
        try:
            yield deployment, made[4].party
        finally:
            db.dispose()


def timed(run: Any) -> tuple[float, ImportResult | None]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def measure(backend: str, size: int, per_row: bool, folder: Path) -> list[tuple[str, float]]:
    """(mode, seconds) for a dry run and a real import of ``size`` rows, and one request a
    row when asked."""
    figures = []
    rows = site_rows(size, seed=size)
    with deployment_with_parties(backend, folder) as (deployment, party):
        seconds, dry = timed(lambda: import_rows(deployment, party, rows, dry_run=True))
        assert dry is not None and dry.count("created") == size, "the dry run refused rows"
        figures.append(("dry run", seconds))
        seconds, real = timed(lambda: import_rows(deployment, party, rows, dry_run=False))
        assert real is not None and real.count("created") == size, "the import refused rows"
        figures.append(("import", seconds))
        seconds, again = timed(lambda: import_rows(deployment, party, rows, dry_run=False))
        assert again is not None and again.count("unchanged") == size
        figures.append(("re-import (unchanged)", seconds))
    if per_row:
        other = site_rows(size, seed=size + 1, prefix="alone")
        with deployment_with_parties(backend, folder) as (deployment, party):
            started = time.perf_counter()
            for row in other:
                done = import_rows(deployment, party, [row], dry_run=False)
                assert done.count("created") == 1
            figures.append(("one request per row (before)", time.perf_counter() - started))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument(
        "--no-per-row", action="store_true", help="skip the one-request-per-row figure"
    )
    args = parser.parse_args()
    console = Console()
    table = Table(title="Imports (service.imports.import_rows, in-process)")
    for column in ("backend", "rows", "mode", "seconds", "rows/s"):
        table.add_column(
            column, justify="right" if column in ("rows", "seconds", "rows/s") else "left"
        )
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            for size in args.sizes:
                per_row = not args.no_per_row and size == max(args.sizes)
                for mode, seconds in measure(backend, size, per_row, Path(tmp)):
                    table.add_row(
                        backend, f"{size:,}", mode, f"{seconds:.1f}", f"{size / seconds:,.0f}"
                    )
                    console.print(f"{backend} {size} {mode}: {seconds:.2f} s", style="dim")
    console.print(table)
    console.print(
        f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"({os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
