"""Conflict checks over HTTP: `POST /v1/conflicts/check` per second, and latency, with N
declarations stored and the service run as `deconflict serve` with its default workers.

Not a test: prints a table. Needs `wrk` (Debian's package) as the load generator, because a
Python client would take the CPU the server needs on a 2-core machine.

    python benchmarks/http_checks.py --stored 100000 --seconds 20
    python benchmarks/http_checks.py --stored 1000000 --seconds 10     # restart at 1M
    python benchmarks/http_checks.py --workers 1                        # other than the default
    python benchmarks/http_checks.py --db postgresql:///empty_db        # on PostgreSQL

The workload is issue 6's (``../shared/bench/workload.py``, seed 42): the N stored volumes
are ``dataset(N)`` and the request bodies its 1000 ``queries``, each a what-if operation.

Setting up: parties are registered through the service; the N stored operations (of 50
operators) are written straight into the `declarations` table (the API would take far longer
to make 100,000), so this database's record does not cover them — do not `verify` it. The
service then loads them at start-up like any restart: "start-up to first check" is the time
from starting `deconflict serve` to its first 200 answer.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).parent))

from check_latency import W, json_lines

from deconflict.service.bootstrap import initialise
from deconflict.service.deployment import Deployment
from deconflict.service.parties import register_party
from deconflict.storage.database import Database
from deconflict.storage.meta import CHANGE_SEQ, set_meta
from deconflict.storage.schema import declarations

WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/conflicts/check",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"},
    bodies[(n %% #bodies) + 1])
end
"""


def populate(db_url: str, key_file: Path, policy: Path, stored: int) -> str:
    db = Database(db_url)
    initialise(db, key_file, policy)
    deployment = Deployment(db, key_file)
    owners = []
    with deployment.writing() as write:
        for n in range(50):
            party, _token, _, _ = register_party(
                write, name=f"Operator {n}", role="operator", actor=None
            )
            owners.append(party.id)
        _, checker_token, _, _ = register_party(write, name="Checker", role="operator", actor=None)
    rng = random.Random(42)
    now = datetime.now(UTC).isoformat()
    batch: list[dict[str, Any]] = []
    with db.engine.begin() as conn:
        for n, line in enumerate(json_lines(W.dataset(stored, 42), "v")):
            document = json.loads(line)
            del document["id"]
            batch.append(
                {
                    "id": f"dcl_bench{n:08d}",
                    "kind": "operation",
                    "owner": rng.choice(owners),
                    "version": f"v{n}",
                    "state": "active",
                    "category": "",
                    "volumes": json.dumps([document]),
                    "metadata": "{}",
                    "restricts": None,
                    "late_notice": False,
                    "created_at": now,
                    "updated_at": now,
                    "change_seq": n + 1,
                }
            )
            if len(batch) == 5000:
                conn.execute(insert(declarations), batch)
                batch.clear()
        if batch:
            conn.execute(insert(declarations), batch)
        set_meta(conn, CHANGE_SEQ, str(stored))
    db.dispose()
    return checker_token


def _without_id(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "id"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help="default: serve's own")
    parser.add_argument(
        "--db", default=None, help="an empty database to use (default: a SQLite file)"
    )
    args = parser.parse_args()
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        db_url = args.db or f"sqlite:///{tmp / 'bench.db'}"
        console.print(f"storing {args.stored:,} operations …")
        token = populate(db_url, tmp / "log.key", tmp / "policy.toml", args.stored)
        bodies = tmp / "bodies.jsonl"
        queries = [json.loads(line) for line in json_lines(W.queries(1000, 42), "q")]
        bodies.write_text(
            "".join(
                json.dumps({"kind": "operation", "volumes": [_without_id(q)]}) + "\n"
                for q in queries
            )
        )
        script = tmp / "checks.lua"
        script.write_text(WRK_SCRIPT % {"bodies": bodies, "token": token})
        port = 8700 + os.getpid() % 200
        began = time.monotonic()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deconflict",
                "serve",
                "--db",
                db_url,
                "--port",
                str(port),
                "--key-file",
                str(tmp / "log.key"),
                "--log-level",
                "warning",
                *(["--workers", str(args.workers)] if args.workers else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            first = json.loads(bodies.read_text().splitlines()[0])
            while True:
                try:
                    answer = httpx.post(
                        f"{base}/v1/conflicts/check",
                        json=first,
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=5,
                    )
                    if answer.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None:
                    raise SystemExit(server.stderr.read().decode() if server.stderr else "")
                time.sleep(0.2)
            restart_s = time.monotonic() - began
            if args.workers != 1:
                # Every worker must listen before wrk opens its connections, or the first
                # worker up keeps them all (they are kept open for the whole run).
                assert server.stderr is not None
                for line in server.stderr:
                    if b"workers are serving" in line:
                        break
                all_up_s = time.monotonic() - began
            else:
                all_up_s = restart_s
            wrk = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    f"-c{args.connections}",
                    f"-d{args.seconds}s",
                    "--latency",
                    "-s",
                    str(script),
                    base,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    output = wrk.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1)  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    table = Table(title=f"POST /v1/conflicts/check over HTTP, {args.stored:,} stored")
    for column in (
        "stored",
        "start-up to first check s",
        "to all workers s",
        "checks/s",
        "p50",
        "p99",
        "non-2xx",
        "connections",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        f"{args.stored:,}",
        f"{restart_s:.1f}",
        f"{all_up_s:.1f}",
        f"{rate:.0f}",
        p50,
        p99,
        errors.group(1) if errors else "0",
        str(args.connections),
    )
    console.print(table)


if __name__ == "__main__":
    main()
