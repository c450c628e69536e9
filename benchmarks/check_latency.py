"""How long one conflict check takes among N stored volumes, in-process, on the shared workload.

Prints a table; not a test. Usage (from the repository):

    .venv/bin/python benchmarks/check_latency.py [N ...] [--verify K] [--threads T]

The workload is ``../shared/bench/workload.py`` (seed 42), written as API.md Volume documents
the way ``../shared/bench/export.py`` writes them. Stored volumes are operations of distinct
owners under the default policy; each of the 1000 queries is a what-if operation check
(``ConflictIndex.conflicting_ids``), timed from its Volume document to the list of ids, after
100 warm-up queries. "load s" covers parsing the JSON lines and loading the index ("index s"
the loading alone); "B/volume" is what the loaded index holds per volume, measured with
tracemalloc on a second, untimed load. "put µs" and "remove µs" are the median time to put
one new declaration into the loaded index, as a write does, and to remove it. ``--verify K``
checks the first K queries against a brute force with ``geometry.within_m`` (pyproj's Geod).
``--threads T`` sets the threads a heavy check is shared out to (default: the service's,
``DECONFLICT_CHECK_THREADS``); ``--threads 1`` measures every check in one thread.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from deconflict.engine.index import ConflictIndex
from deconflict.engine.rule import Declared
from deconflict.engine.store import columns_from_documents
from deconflict.geo.distance import within_m
from deconflict.geo.geojson import parse_geometry
from deconflict.policy import default_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / ".." / "shared" / "bench"))
import workload as W

QUERIES = 1000
WARM_UP = 100
WRITES = 500


def json_lines(volumes: W.Volumes, prefix: str) -> list[str]:
    """The workload as export.py writes it: one Volume document (plus an id) per line."""
    import shapely

    geometries = shapely.to_geojson(volumes.geoms)
    starts, ends = W.t_iso(volumes.t0), W.t_iso(volumes.t1)
    lines = []
    for i in range(len(volumes)):
        lower = float(volumes.alt_lo[i]) if np.isfinite(volumes.alt_lo[i]) else None
        document = {
            "id": f"{prefix}{abs(int(volumes.ids[i]))}",
            "geometry": json.loads(geometries[i]),
            "buffer_m": float(volumes.buf[i]),
            "altitude": {"lower_m": lower, "upper_m": float(volumes.alt_hi[i])},
            "time": {"start": starts[i], "end": ends[i] or None},
        }
        lines.append(json.dumps(document, separators=(",", ":")))
    return lines


def bytes_per_volume(stored: list[str]) -> float:
    """What a loaded index holds, per volume (the JSON parsed on the way is freed)."""
    ConflictIndex()  # the compiled kernels are loaded before measuring
    gc.collect()
    tracemalloc.start()
    try:
        index = ConflictIndex()
        index.put_many((operation(doc), [doc]) for doc in map(json.loads, stored))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del index
    return held / len(stored)


def operation(document: dict[str, Any]) -> Declared:
    return Declared(document["id"], "operation", "p" + document["id"], "operator", "1", "", None)


def timed_checks(
    index: ConflictIndex, queries: list[dict[str, Any]]
) -> tuple[np.ndarray, list[list[str]]]:
    """Each query as a what-if operation check, after the warm-up: seconds and answers."""
    policy = default_policy()

    def check(document: dict[str, Any]) -> list[str]:
        asker = Declared(None, "operation", "p" + document["id"], "operator", "", "", None)
        return index.conflicting_ids(policy, asker, [document])

    for document in queries[:WARM_UP]:
        check(document)
    timings = np.empty(len(queries))
    found = []
    for number, document in enumerate(queries):
        began = time.perf_counter()
        ids = check(document)
        timings[number] = time.perf_counter() - began
        found.append(ids)
    return timings, found


def run(n: int, verify: int, threads: int | None) -> list[str]:
    stored = json_lines(W.dataset(n, 42), "v")
    queries = [json.loads(line) for line in json_lines(W.queries(QUERIES, 42), "q")]
    began = time.perf_counter()
    documents = [json.loads(line) for line in stored]
    parse_s = time.perf_counter() - began
    index = ConflictIndex(threads)
    index.put_many((operation(doc), [doc]) for doc in documents)
    load_s = time.perf_counter() - began
    del documents
    timings, found = timed_checks(index, queries)
    put_us, remove_us = timed_writes(index, queries)
    if verify:
        _verify(stored, queries[:verify], found[:verify])
    del index
    gc.collect()
    per_volume = bytes_per_volume(stored)
    return [
        f"{n:,}",
        f"{load_s:.1f}",
        f"{load_s - parse_s:.1f}",
        f"{np.percentile(timings, 50) * 1e3:.3f}",
        f"{np.percentile(timings, 99) * 1e3:.3f}",
        f"{len(queries) / timings.sum():,.0f}",
        f"{per_volume:,.0f}",
        f"{np.mean([len(ids) for ids in found]):.2f}",
        f"{put_us:.0f}",
        f"{remove_us:.0f}",
    ]


def timed_writes(index: ConflictIndex, queries: list[dict[str, Any]]) -> tuple[float, float]:
    """Median microseconds to put one new declaration into the loaded index (as a write
    does after its commit) and to remove it again: issue 6 asks that a write cost
    O(log n), so these should barely grow with N."""
    puts, removes = [], []
    for number, document in enumerate(queries[:WRITES]):
        declared = operation({**document, "id": f"w{number}"})
        began = time.perf_counter()
        index.put_documents(declared, [document])
        puts.append(time.perf_counter() - began)
    for number in range(min(WRITES, len(queries))):
        began = time.perf_counter()
        index.remove(f"w{number}")
        removes.append(time.perf_counter() - began)
    return float(np.median(puts)) * 1e6, float(np.median(removes)) * 1e6


def _verify(stored: list[str], queries: list[dict[str, Any]], found: list[list[str]]) -> None:
    """Brute force: time and altitude with numpy, then geometry.within_m on every pair left."""
    documents = [json.loads(line) for line in stored]

    columns = columns_from_documents(documents)
    shapes: dict[int, Any] = {}
    for number, (query, ids) in enumerate(zip(queries, found, strict=True)):
        q = columns_from_documents([query])
        near = (
            (columns.t0 < q.t1[0])
            & (q.t0[0] < columns.t1)
            & (np.maximum(q.lo[0] - columns.hi, columns.lo - q.hi[0]) <= W.SEP_V)
        )
        shape = parse_geometry(query["geometry"], "query")
        expected = set()
        for i in np.flatnonzero(near):
            if i not in shapes:
                shapes[i] = parse_geometry(documents[i]["geometry"], "stored")
            if within_m(shape, shapes[i], q.buf[0] + columns.buf[i] + W.SEP_H):
                expected.add(documents[i]["id"])
        if expected != set(ids):
            print(f"query {number}: engine {sorted(set(ids) - expected)} brute force "
                  f"{sorted(expected - set(ids))}")  # fmt: skip
    print(f"verified {len(queries)} queries against the brute force")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--verify", type=int, default=0, metavar="K")
    parser.add_argument("--threads", type=int, default=None, metavar="T")
    arguments = parser.parse_args()
    # Compiles the kernels, or loads them from numba's cache, as a service starts.
    threads = ConflictIndex(arguments.threads).threads
    table = Table(
        title="One what-if check among N stored volumes (in-process, workload seed 42, "
        f"heavy checks on {threads} thread{'s' if threads > 1 else ''})"
    )
    columns = ("N", "load s", "index s", "p50 ms", "p99 ms", "checks/s", "B/volume", "conflicts",
               "put µs", "remove µs")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for n in arguments.sizes:
        table.add_row(*run(n, arguments.verify, arguments.threads))
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
