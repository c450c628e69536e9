"""``deconflict bench``: its table, its ``--out`` document, its answers and its errors.

The answers are checked against the rule itself (``conflict_between``, no index) over every
query-volume pair, the protected declarations' too (altitude ignored, and counted with
altitude separated). The workload is generated here, in the shape ``../shared/bench/export.py``
writes; when that generator is present beside the repository, one more test runs on its
exact output.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from deconflict.bench import (
    BenchFileError,
    altitude_separated,
    protected_declarations,
    validated_ids,
)
from deconflict.cli import main
from deconflict.engine.index import ConflictIndex
from deconflict.engine.rule import Subject, conflict_between
from deconflict.policy import Policy, default_policy
from deconflict.requests import VolumeIn
from deconflict.volumes import build_volumes

SHARED_EXPORT = Path(__file__).resolve().parents[3] / "shared" / "bench" / "export.py"

# A 0.5 x 0.4 degree box (about 45 x 45 km) and two days: crowded enough for conflicts.
LON, LAT = (37.0, 37.5), (36.0, 36.4)
DAY_S = 86_400


def _polygon(rng: np.random.Generator, lon: float, lat: float) -> dict[str, Any]:
    # Evenly spaced angles, jittered by less than half a step: a simple star polygon.
    count = int(rng.integers(4, 9))
    angles = (np.arange(count) + rng.uniform(-0.3, 0.3, count)) * 2 * math.pi / count
    radii = rng.uniform(0.01, 0.05, count)
    ring = [
        [lon + float(r) * math.cos(a), lat + float(r) * math.sin(a)]
        for r, a in zip(radii, angles, strict=True)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _geometry(rng: np.random.Generator) -> tuple[dict[str, Any], float]:
    """A point with a wide buffer, a corridor or a small star polygon, as export.py draws."""
    lon, lat = float(rng.uniform(*LON)), float(rng.uniform(*LAT))
    kind = rng.random()
    if kind < 0.6:
        return {"type": "Point", "coordinates": [lon, lat]}, float(rng.integers(1000, 20001))
    if kind < 0.85:
        steps = rng.uniform(-0.05, 0.05, (int(rng.integers(1, 6)), 2))
        line = np.cumsum(np.vstack([[lon, lat], steps]), axis=0).tolist()
        return {"type": "LineString", "coordinates": line}, float(rng.integers(1000, 5001))
    return _polygon(rng, lon, lat), float(rng.integers(0, 2001))


def _time(seconds: float) -> str:
    return (
        np.datetime_as_string(
            np.datetime64("2025-01-01T00:00:00", "s") + np.timedelta64(int(seconds), "s"), unit="s"
        ).item()
        + "Z"
    )


def workload(count: int, prefix: str, seed: int) -> list[dict[str, Any]]:
    """Volumes in the export.py shape: ground and airborne bands, 5 % open-ended windows."""
    rng = np.random.default_rng(seed)
    documents = []
    for number in range(1, count + 1):
        geometry, buffer_m = _geometry(rng)
        if rng.random() < 0.3:  # ground: unbounded below
            altitude = {"lower_m": None, "upper_m": float(rng.integers(0, 101))}
        else:
            lower = float(rng.integers(0, 8001))
            altitude = {"lower_m": lower, "upper_m": min(lower + rng.integers(300, 6001), 12000.0)}
        start = float(rng.integers(0, 2 * DAY_S))
        end = None if rng.random() < 0.05 else _time(start + float(rng.integers(600, 43201)))
        documents.append(
            {
                "id": f"{prefix}{number}",
                "geometry": geometry,
                "buffer_m": buffer_m,
                "altitude": altitude,
                "time": {"start": _time(start), "end": end},
            }
        )
    return documents


def write_lines(path: Path, documents: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in documents), "utf-8")
    return path


def run_bench(volumes: Path, queries: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        main, ["bench", "--volumes", str(volumes), "--queries", str(queries), *extra]
    )


def _subjects(path: Path, role: str) -> list[Subject]:
    limits = default_policy().limits
    out = []
    for line in path.read_text("utf-8").splitlines():
        document = json.loads(line)
        identifier = document.pop("id")
        built = build_volumes([VolumeIn.model_validate(document)], limits)
        owner = f"{role}-{identifier}"
        out.append(Subject(identifier, "operation", owner, "operator", "1", "", None, (*built,)))
    return out


def brute_force(volumes: Path, queries: Path, policy: Policy | None = None) -> dict[str, list[str]]:
    """Every query's conflicts by the rule alone, over every stored volume."""
    policy = policy or default_policy()
    stored = _subjects(volumes, "stored")
    return {
        str(query.id): [
            str(other.id) for other in stored if conflict_between(policy, query, other) is not None
        ]
        for query in _subjects(queries, "query")
    }


def protected_by_brute_force(volumes: Path, queries: Path, policy: Policy) -> dict[str, list[str]]:
    """Every query's conflicts with the bench's protected declarations, by the rule alone
    (only the queries that have some, as the bench writes them)."""
    limits = policy.limits
    stored = [
        declared.with_volumes(
            tuple(build_volumes([VolumeIn.model_validate(d) for d in docs], limits))
        )
        for declared, docs in protected_declarations(volumes)
    ]
    found = {
        str(query.id): [
            str(other.id) for other in stored if conflict_between(policy, query, other) is not None
        ]
        for query in _subjects(queries, "query")
    }
    return {query: ids for query, ids in found.items() if ids}


def test_bench_prints_the_table_and_writes_answers_equal_to_the_rule(tmp_path: Path) -> None:
    volumes = write_lines(tmp_path / "volumes.jsonl", workload(300, "v", seed=1))
    queries = write_lines(tmp_path / "queries.jsonl", workload(40, "q", seed=2))
    out = tmp_path / "out.json"

    result = run_bench(volumes, queries, "--out", str(out))

    assert result.exit_code == 0, result.output
    for measure in (
        "load s",
        "p50 ms",
        "p99 ms",
        "checks/s",
        "bytes/volume",
        "mean conflicts",
        "protected declarations",
        "protected conflicts",
        "if altitude separated",
    ):
        assert measure in result.stdout
    assert "check threads" in result.stdout
    written = json.loads(out.read_text("utf-8"))
    assert written["check_threads"] == ConflictIndex().threads
    for key in ("p50_ms", "p99_ms", "load_s", "bytes_per_volume", "checks_per_s"):
        assert isinstance(written[key], float) and written[key] >= 0, key
    assert written["p50_ms"] <= written["p99_ms"]
    expected = brute_force(volumes, queries)
    assert written["queries"] == expected
    # The workload must exercise the rule, not only its empty answer.
    assert sum(map(len, expected.values())) > 40
    assert written["mean_conflicts"] == pytest.approx(sum(map(len, expected.values())) / 40)
    assert_protected_answers(written, volumes, queries)


def assert_protected_answers(written: dict[str, Any], volumes: Path, queries: Path) -> None:
    """The protected declarations' answers are the rule's, under the default policy (altitude
    ignored) and, counted, under ``altitude = "separated"``; the workload must exercise the
    pairs that only an ignored altitude makes conflict."""
    policy = default_policy()
    expected = protected_by_brute_force(volumes, queries, policy)
    assert written["protected"] == expected
    assert written["protected_count"] == len(protected_declarations(volumes))
    assert written["protected_conflicts"] == sum(map(len, expected.values()))
    separated = protected_by_brute_force(volumes, queries, altitude_separated(policy))
    assert written["protected_conflicts_separated"] == sum(map(len, separated.values()))
    assert written["protected_conflicts"] >= 5
    assert written["protected_conflicts"] > written["protected_conflicts_separated"]


@pytest.mark.skipif(not SHARED_EXPORT.exists(), reason="../shared/bench is not beside the repo")
def test_bench_reads_the_anchor_workload_and_agrees_with_the_rule(tmp_path: Path) -> None:
    # --congested squeezes the anchors' workload into 60 km and 7 days, so conflicts abound.
    subprocess.run(
        [
            sys.executable,
            SHARED_EXPORT,
            "--n",
            "300",
            "--nq",
            "30",
            "--congested",
            "--out",
            tmp_path,
        ],
        check=True,
        capture_output=True,
        cwd=SHARED_EXPORT.parent,
    )
    volumes, queries = tmp_path / "volumes.jsonl", tmp_path / "queries.jsonl"
    out = tmp_path / "out.json"

    result = run_bench(volumes, queries, "--out", str(out))

    assert result.exit_code == 0, result.output
    expected = brute_force(volumes, queries)
    written = json.loads(out.read_text("utf-8"))
    assert written["queries"] == expected
    assert sum(map(len, expected.values())) > 30
    assert_protected_answers(written, volumes, queries)


GOOD = workload(1, "v", seed=3)[0]


def _with(**changes: Any) -> str:
    return json.dumps({**GOOD, **changes})


@pytest.mark.parametrize(
    ("second_line", "named"),
    [
        pytest.param(
            '{"id": "v2", ',
            "line 2: not valid JSON: Expecting property name enclosed "
            "in double quotes at column 14",
            id="not-json",
        ),
        pytest.param("[1, 2]", "line 2: expected a JSON object", id="not-an-object"),
        pytest.param(_with(id=None), "line 2, field id:", id="no-id"),
        pytest.param(
            _with(id="v1"),
            "line 2, field id: duplicate id 'v1' (first on line 1)",
            id="duplicate-id",
        ),
        pytest.param(
            _with(id="v2", time={"start": "yesterday"}), "line 2, field time.start:", id="bad-time"
        ),
        pytest.param(_with(id="v2", buffer_m=-1), "line 2, field buffer_m:", id="negative-buffer"),
        pytest.param(_with(id="v2", colour="red"), "line 2, field colour:", id="unknown-field"),
        pytest.param(
            _with(id="v2", geometry={"type": "Point", "coordinates": [200, 0]}),
            "line 2, field geometry",
            id="longitude-out-of-range",
        ),
        pytest.param(
            _with(id="v2", geometry={"type": "Circle", "coordinates": [0, 0]}),
            "line 2, field geometry",
            id="unknown-geometry-type",
        ),
    ],
)
def test_a_bad_line_is_named_with_its_field(tmp_path: Path, second_line: str, named: str) -> None:
    volumes = tmp_path / "volumes.jsonl"
    volumes.write_text(json.dumps(GOOD) + "\n" + second_line + "\n", "utf-8")
    queries = write_lines(tmp_path / "queries.jsonl", workload(2, "q", seed=4))

    result = run_bench(volumes, queries)

    assert result.exit_code == 1
    assert f"{volumes} {named}" in result.stderr
    assert "Traceback" not in result.output


def test_a_bad_query_file_is_named_too(tmp_path: Path) -> None:
    volumes = write_lines(tmp_path / "volumes.jsonl", workload(2, "v", seed=5))
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n", "utf-8")

    result = run_bench(volumes, queries)

    assert result.exit_code == 1
    assert f"{queries} line 1: the file holds no volumes" in result.stderr


@pytest.mark.parametrize(
    ("bad_lines", "named"),
    [
        pytest.param({}, None, id="valid"),
        pytest.param(
            {200: _with(id="v3"), 251: '{"id": "v251", '},
            "line 200, field id: duplicate id 'v3' (first on line 3)",
            id="duplicate-across-ranges-before-bad-json",
        ),
        pytest.param(
            {7: _with(id="v7", buffer_m="wide"), 251: '{"id": "v251", '},
            "line 7, field buffer_m:",
            id="bad-field-before-bad-json",
        ),
    ],
)
def test_validation_in_worker_processes_matches_one_process(
    tmp_path: Path, bad_lines: dict[int, str], named: str | None
) -> None:
    lines = [json.dumps(d) for d in workload(300, "v", seed=6)]
    for number, text in bad_lines.items():
        lines[number - 1] = text
    volumes = tmp_path / "volumes.jsonl"
    volumes.write_text("\n".join(lines) + "\n", "utf-8")
    limits = default_policy().limits

    def validate(workers: int) -> dict[str, int] | str:
        try:
            # Small ranges, so that 300 lines are shared among the workers.
            return validated_ids(volumes, limits, workers=workers, chunk_bytes=3000)
        except BenchFileError as exc:
            return str(exc)

    in_workers, in_one = validate(2), validate(1)

    assert in_workers == in_one
    if named is None:
        assert in_one == {f"v{k}": k - 1 for k in range(1, 301)}
    else:
        assert isinstance(in_one, str)
        assert in_one.startswith(f"{volumes} {named}")
