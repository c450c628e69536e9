"""``deconflict bench``: how fast the service's own conflict index answers what-if checks.

Input files are JSON lines, one volume per line, in the API.md ``Volume`` shape plus an
``"id"`` (what ``../shared/bench/export.py`` writes)::

    {"id": "v17", "geometry": {...}, "buffer_m": 1200, "altitude": {"lower_m": null,
     "upper_m": 60}, "time": {"start": "2025-01-17T11:21:30Z", "end": null}}

Every stored volume becomes an operation of its own owner, so every pair is judged under the
default policy's operation-operation separations; every query is a what-if operation check,
timed one by one after a warm-up, as the anchors in ``../shared/bench`` time theirs.

Protected declarations are added besides them (issue 13): at every ``PROTECTED_EVERY``-th
stored volume, a hospital (a site, a point with a 200 m buffer, 0-50 m, open-ended) or a
convoy (a movement, a 10 km road, unbounded below up to 10 m, the volume's window), each of
its own humanitarian owner. The queries fly at their own bands, mostly far above them: under
the default ``[protection] altitude = "ignored"`` they conflict with those they pass over,
which the pass must find with an infinite vertical separation (``grid.BANDED_KIND`` says how
that keeps the altitude pruning of operations). Their answers are kept apart (``protected``),
so that ``queries`` stays comparable with the anchors' operation-only answers, and they are
counted again with ``altitude = "separated"`` (untimed) to show what altitude would have hidden.

Three phases, measured apart:

- validate: every line through the API's own validation (pydantic, then the geometry rules),
  so a bad file is refused naming its line and field; large files in one process per core.
  The service pays this when a declaration is written, not when it loads its index, so it
  is not part of the load.
- load: read the file again and hand the volume documents to ``ConflictIndex.put_many``, as
  a restarting service hands it its stored rows. The PostGIS anchor's load likewise covers
  serialising, COPY and the index build.
- check: ``ConflictIndex.conflicting_ids`` for every query, the ids-only what-if check,
  with the protected declarations loaded (after the load is measured: they are not in the
  load time nor in the memory per volume).

Memory is the growth of the resident set over the load (after ``gc`` and ``malloc_trim`` on
both sides, with the engine's kernels already compiled), so it counts everything the index
keeps alive, divided by the volume count.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import gc
import itertools
import json
import multiprocessing
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from deconflict.engine.index import SHARE_ABOVE, ConflictIndex
from deconflict.engine.rule import Declared, Subject
from deconflict.errors import DeconflictError, InvalidRequest
from deconflict.policy import Limits, Policy, default_policy
from deconflict.requests import VolumeIn, validate
from deconflict.volumes import build_volumes

WARMUP_QUERIES = 100
"""Queries run once before timing, as the anchors do (caches, allocator, branch predictors)."""

LOAD_METHOD = "put_many (volume documents, as on restart)"
CHECK_METHOD = "conflicting_ids (ids only)"

PARALLEL_FROM_BYTES = 16 << 20
"""Volumes files from this size are validated in one process per core."""

CHUNK_BYTES = 4 << 20

_VOLUME_FIELD = "volume"

PROTECTED_EVERY = 20
"""One protected declaration per this many stored volumes (sites and movements by turns)."""

PROTECTED_PREFIX = "protected-"

Progressed = Callable[[int], None]


class BenchFileError(Exception):
    """A line of an input file that is not a volume; the message names the line and field."""

    def __init__(self, path: Path, line: int, field: str | None, message: str) -> None:
        where = f"{path} line {line}" + (f", field {field}" if field else "")
        super().__init__(f"{where}: {message}")
        self.line, self.field, self.message = line, field, message


@dataclass(frozen=True)
class BenchResult:
    volume_count: int
    query_count: int
    validate_s: float
    load_s: float
    bytes_per_volume: float
    latencies_s: np.ndarray[Any, np.dtype[np.float64]]
    conflicts: dict[str, list[str]]
    check_threads: int = 1  # threads sharing a check that reads many grid entries
    # Per query, the protected declarations in conflict (default policy, altitude ignored),
    # and how many there are with ``altitude = "separated"``.
    protected: dict[str, list[str]] = field(default_factory=dict)
    protected_count: int = 0
    protected_conflicts_separated: int = 0

    @property
    def protected_conflicts(self) -> int:
        return sum(map(len, self.protected.values()))

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_s, 50) * 1e3)

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_s, 99) * 1e3)

    @property
    def checks_per_s(self) -> float:
        """Checks per second one at a time: the count over the summed latencies."""
        return self.query_count / float(self.latencies_s.sum())

    @property
    def mean_conflicts(self) -> float:
        return sum(map(len, self.conflicts.values())) / max(self.query_count, 1)

    def to_json(self) -> dict[str, Any]:
        """The ``--out`` document; ``queries`` maps each query id to the conflicting ids."""
        return {
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "load_s": self.load_s,
            "bytes_per_volume": self.bytes_per_volume,
            "checks_per_s": self.checks_per_s,
            "mean_conflicts": self.mean_conflicts,
            "validate_s": self.validate_s,
            "volume_count": self.volume_count,
            "query_count": self.query_count,
            "load_method": LOAD_METHOD,
            "check_method": CHECK_METHOD,
            "check_threads": self.check_threads,
            "protected_count": self.protected_count,
            "protected_conflicts": self.protected_conflicts,
            "protected_conflicts_separated": self.protected_conflicts_separated,
            "queries": self.conflicts,
            "protected": self.protected,
        }


# --------------------------------------------------------------------------- input files


def documents(path: Path, progressed: Progressed | None = None) -> Iterator[tuple[int, str, Any]]:
    """Each non-blank line's number, id and volume document (the line without its id).

    ``progressed`` is called with the bytes read so far. Raises ``BenchFileError`` for a
    line that is not a JSON object with a string id; the document itself is not checked.
    """
    done = 0
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            done += len(raw)
            if progressed is not None and number % 1024 == 0:
                progressed(done)
            parsed = _document(path, number, raw)
            if parsed is not None:
                yield number, *parsed
    if progressed is not None:
        progressed(done)


def _document(path: Path, number: int, raw: bytes) -> tuple[str, Any] | None:
    """A line's id and volume document; None for a blank line."""
    line = raw.rstrip(b"\r\n")
    if not line.strip():
        return None
    try:
        document = json.loads(line)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: {exc.msg} at column {exc.colno}"
        raise BenchFileError(path, number, None, message) from exc
    except ValueError as exc:  # not UTF-8
        raise BenchFileError(path, number, None, f"not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BenchFileError(path, number, None, "expected a JSON object (a volume with an id)")
    identifier = document.pop("id", None)
    if not isinstance(identifier, str) or not identifier:
        raise BenchFileError(path, number, "id", "expected a non-empty string")
    return identifier, document


def read_subjects(
    path: Path, limits: Limits, role: str, progressed: Progressed | None = None
) -> Iterator[Subject]:
    """Every line of ``path``, validated as the API validates a volume, as an operation of
    its own owner (``role``: "volume" or "query"). Raises ``BenchFileError``."""
    first_line: dict[str, int] = {}
    for number, identifier, document in documents(path, progressed):
        _note_id(path, number, identifier, first_line)
        volumes = tuple(_volumes(path, number, document, limits))
        yield Subject(**_operation(role, identifier), volumes=volumes)
    if not first_line:
        raise BenchFileError(path, 1, None, "the file holds no volumes")


def _note_id(path: Path, number: int, identifier: str, first_line: dict[str, int]) -> None:
    if identifier in first_line:
        message = f"duplicate id {identifier!r} (first on line {first_line[identifier]})"
        raise BenchFileError(path, number, "id", message)
    first_line[identifier] = number


def validated_ids(
    path: Path,
    limits: Limits,
    progressed: Progressed | None = None,
    *,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> dict[str, int]:
    """Validate every line of a volumes file; each id's position in the file.

    Validation costs a few hundred microseconds a volume (pydantic, then the geometry
    rules), so a large file is validated in ``workers`` processes (default: one per core
    when the file exceeds ``PARALLEL_FROM_BYTES``), ``chunk_bytes`` of whole lines each.
    The first bad line in file order is reported, as it is in one process.
    """
    size = path.stat().st_size
    if workers is None:
        workers = (os.cpu_count() or 1) if size >= PARALLEL_FROM_BYTES else 1
    if workers <= 1:
        subjects = read_subjects(path, limits, "volume", progressed)
        return {str(subject.id): number for number, subject in enumerate(subjects)}
    ranges = _line_ranges(path, size, chunk_bytes)
    first_line: dict[str, int] = {}
    offset = 0
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(_validate_range, path, start, end, limits) for start, end in ranges]
        for (_, end), future in zip(ranges, futures, strict=True):
            count, ids, error = future.result()
            for number, identifier in ids:
                _note_id(path, offset + number, identifier, first_line)
            if error is not None:
                raise BenchFileError(path, offset + error[0], error[1], error[2])
            offset += count
            if progressed is not None:
                progressed(end)
    finally:
        pool.shutdown(cancel_futures=True)
    if not first_line:
        raise BenchFileError(path, 1, None, "the file holds no volumes")
    return {identifier: number for number, identifier in enumerate(first_line)}


def _line_ranges(path: Path, size: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``chunk_bytes`` that start and end at line boundaries."""
    bounds = [0]
    with path.open("rb") as lines:
        while bounds[-1] + chunk_bytes < size:
            lines.seek(bounds[-1] + chunk_bytes)
            lines.readline()
            bounds.append(lines.tell())
    if bounds[-1] < size:
        bounds.append(size)
    return list(itertools.pairwise(bounds))


def _validate_range(
    path: Path, start: int, end: int, limits: Limits
) -> tuple[int, list[tuple[int, str]], tuple[int, str | None, str] | None]:
    """In a worker: the lines of one byte range, validated. Line numbers are relative to the
    range; returns the count of lines, the ids before the first error, and that error."""
    with path.open("rb") as lines:
        lines.seek(start)
        raws = lines.read(end - start).split(b"\n")
    if raws and not raws[-1]:
        raws.pop()  # the range ends with a newline
    ids: list[tuple[int, str]] = []
    for number, raw in enumerate(raws, start=1):
        try:
            parsed = _document(path, number, raw)
            if parsed is not None:
                _volumes(path, number, parsed[1], limits)
                ids.append((number, parsed[0]))
        except BenchFileError as exc:
            return len(raws), ids, (exc.line, exc.field, exc.message)
    return len(raws), ids, None


def _operation(role: str, identifier: str) -> dict[str, Any]:
    """The fields of an operation of its own owner: owners are all distinct, because a
    declaration never conflicts with its own owner's."""
    return {
        "id": identifier,
        "kind": "operation",
        "owner": f"{role}:{identifier}",
        "owner_role": "operator",
        "version": "1",
        "category": "",
        "restricts": None,
    }


def _volumes(path: Path, number: int, document: Any, limits: Limits) -> list[Any]:
    try:
        # A line is a JSON object (``_document``), so every error names a field of it.
        item = validate(document, VolumeIn)
    except InvalidRequest as exc:
        first = exc.errors[0]
        raise BenchFileError(path, number, first["field"], first["message"]) from exc
    try:
        return build_volumes([item], limits, field=_VOLUME_FIELD)
    except DeconflictError as exc:
        field = exc.errors[0]["field"] if exc.errors else None
        raise BenchFileError(path, number, _strip_volume(field), exc.detail) from exc


def _strip_volume(field: str | None) -> str | None:
    prefix = f"{_VOLUME_FIELD}[0]"
    if field is None or not field.startswith(prefix):
        return field
    return field.removeprefix(prefix).removeprefix(".") or None


# --------------------------------------------------------------------------- load and check


def resident_bytes() -> int:
    """The process's resident set size now (Linux), else its peak (other Unixes)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def settled_resident_bytes() -> int:
    """The resident set once garbage is collected and glibc has returned its free pages, so
    that what the validation freed is not counted, nor reused unseen by the load."""
    gc.collect()
    libc = ctypes.util.find_library("c")
    if libc is not None and sys.platform.startswith("linux"):
        ctypes.CDLL(libc).malloc_trim(0)
    return resident_bytes()


def load_index(index: ConflictIndex, path: Path, progressed: Progressed | None = None) -> None:
    """Hand every volume document of ``path`` to the index, streamed, as stored rows are."""
    index.put_many(
        (Declared(**_operation("volume", identifier)), [document])
        for _, identifier, document in documents(path, progressed)
    )


Item = tuple[Declared, list[dict[str, Any]]]


def protected_declarations(path: Path, every: int = PROTECTED_EVERY) -> list[Item]:
    """The protected declarations added beside the volumes of ``path`` (module docstring):
    a site or a movement at the first position of every ``every``-th volume's geometry."""
    items: list[Item] = []
    for number, (_, identifier, document) in enumerate(documents(path)):
        if number % every != every - 1:
            continue
        lon, lat = _first_position(document["geometry"])
        kind = "site" if len(items) % 2 == 0 else "movement"
        time_ = document["time"]
        if kind == "site":  # a hospital: always there, on the ground
            geometry: dict[str, Any] = {"type": "Point", "coordinates": [lon, lat]}
            volume = {
                "geometry": geometry,
                "buffer_m": 200.0,
                "altitude": {"lower_m": 0.0, "upper_m": 50.0},
                "time": {"start": time_["start"], "end": None},
            }
        else:  # a convoy on a 10 km road, in the volume's window
            east = lon + 0.1 if lon <= 179.8 else lon - 0.1
            road = [[lon, lat], [east, lat]]
            volume = {
                "geometry": {"type": "LineString", "coordinates": road},
                "buffer_m": 0.0,
                "altitude": {"lower_m": None, "upper_m": 10.0},
                "time": dict(time_),
            }
        name = f"{PROTECTED_PREFIX}{kind}-{identifier}"
        declared = Declared(
            id=name,
            kind=kind,
            owner=f"humanitarian:{name}",
            owner_role="humanitarian",
            version="1",
            category="",
            restricts=None,
        )
        items.append((declared, [volume]))
    return items


def _first_position(geometry: Mapping[str, Any]) -> tuple[float, float]:
    """The first position of a GeoJSON geometry (``coordinates`` nested to any depth)."""
    coordinates: Any = geometry["coordinates"]
    while isinstance(coordinates[0], list):
        coordinates = coordinates[0]
    return float(coordinates[0]), float(coordinates[1])


def check_all(
    index: ConflictIndex,
    policy: Policy,
    queries: list[Subject],
    order: dict[str, int],
    protected: dict[str, int] | None = None,
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], dict[str, list[str]], dict[str, list[str]]]:
    """Time each query's what-if check; the conflicting ids per query in file order, the
    stored volumes' and the ``protected`` declarations' (id -> position) apart."""
    protected = protected or {}
    for query in queries[:WARMUP_QUERIES]:
        index.conflicting_ids(policy, query, query.volumes)
    latencies = np.empty(len(queries))
    conflicts: dict[str, list[str]] = {}
    protected_conflicts: dict[str, list[str]] = {}
    for number, query in enumerate(queries):
        began = time.perf_counter()
        found = index.conflicting_ids(policy, query, query.volumes)
        latencies[number] = time.perf_counter() - began
        assert query.id is not None
        stored = [i for i in found if i not in protected]
        conflicts[query.id] = sorted(stored, key=order.__getitem__)
        if len(stored) < len(found):
            hits = [i for i in found if i in protected]
            protected_conflicts[query.id] = sorted(hits, key=protected.__getitem__)
    return latencies, conflicts, protected_conflicts


def count_protected(
    index: ConflictIndex, policy: Policy, queries: list[Subject], protected: dict[str, int]
) -> int:
    """How many (query, protected declaration) conflicts there are under ``policy``."""
    return sum(
        sum(i in protected for i in index.conflicting_ids(policy, query, query.volumes))
        for query in queries
    )


def altitude_separated(policy: Policy) -> Policy:
    """The policy with ``[protection] altitude = "separated"``."""
    return dataclasses.replace(
        policy, protection=dataclasses.replace(policy.protection, altitude="separated")
    )


def run(volumes_path: Path, queries_path: Path, console: Console) -> BenchResult:
    """Validate, load, check and measure; progress goes to ``console`` when a terminal."""
    policy = default_policy()
    queries = list(read_subjects(queries_path, policy.limits, "query"))
    size = volumes_path.stat().st_size
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        began = time.perf_counter()
        task = progress.add_task("validating volumes", total=size)
        order = validated_ids(
            volumes_path, policy.limits, lambda d: progress.update(task, completed=d)
        )
        validate_s = time.perf_counter() - began

        index = ConflictIndex()  # compiles or loads the engine's kernels: not per volume
        before = settled_resident_bytes()
        task = progress.add_task("loading volumes", total=size)
        began = time.perf_counter()
        load_index(index, volumes_path, lambda d: progress.update(task, completed=d))
        load_s = time.perf_counter() - began
        grown = settled_resident_bytes() - before

        protected = protected_declarations(volumes_path)
        positions = {str(declared.id): n for n, (declared, _) in enumerate(protected)}
        if clash := set(positions) & set(order):
            raise BenchFileError(volumes_path, 1, "id", f"ids reserved: {sorted(clash)[:3]}")
        index.put_many(protected)

        progress.add_task(f"checking {len(queries)} queries", total=None)
        latencies, conflicts, protected_hits = check_all(index, policy, queries, order, positions)
        separated = count_protected(index, altitude_separated(policy), queries, positions)
    return BenchResult(
        volume_count=len(order),
        query_count=len(queries),
        validate_s=validate_s,
        load_s=load_s,
        bytes_per_volume=max(grown, 0) / len(order),
        latencies_s=latencies,
        conflicts=conflicts,
        check_threads=index.threads,
        protected=protected_hits,
        protected_count=len(protected),
        protected_conflicts_separated=separated,
    )


# --------------------------------------------------------------------------- report


def table(result: BenchResult) -> Table:
    """One row per measure: narrow enough for any terminal and for logs."""
    rows = [
        ("stored volumes", f"{result.volume_count:,}"),
        ("queries", f"{result.query_count:,} (after {WARMUP_QUERIES} warm-up)"),
        ("validate s", f"{result.validate_s:.2f} (API validation, before the load)"),
        ("load s", f"{result.load_s:.2f}"),
        ("p50 ms", f"{result.p50_ms:.3f}"),
        ("p99 ms", f"{result.p99_ms:.3f}"),
        ("checks/s", f"{result.checks_per_s:,.0f} (one check at a time)"),
        (
            "check threads",
            f"{result.check_threads} (for checks reading over {SHARE_ABOVE:,} entries)",
        ),
        ("bytes/volume", f"{result.bytes_per_volume:,.0f} (resident set growth / volumes)"),
        ("mean conflicts/query", f"{result.mean_conflicts:.2f} (with the stored volumes)"),
        (
            "protected declarations",
            f"{result.protected_count:,} (sites 0-50 m, movements up to 10 m)",
        ),
        ("protected conflicts", f"{result.protected_conflicts:,} (altitude ignored: default)"),
        (
            "... if altitude separated",
            f"{result.protected_conflicts_separated:,} (untimed; altitude would hide "
            f"{result.protected_conflicts - result.protected_conflicts_separated:,})",
        ),
        ("index loaded with", LOAD_METHOD),
        ("checked with", CHECK_METHOD),
    ]
    out = Table(title="What-if operation checks against the service's index")
    out.add_column("measure")
    out.add_column("value", justify="right")
    for name, value in rows:
        out.add_row(name, value)
    return out
