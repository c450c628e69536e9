"""What a write's read-back costs (issue 11): the time ``readback.prove_declarations`` adds to
a write transaction, while it holds the write lock, for declarations of growing size.

    PYTHONPATH=src python benchmarks/readback.py

Prints a table; passes or fails nothing. The read-back parses the stored volumes' JSON, puts
them into a throwaway conflict index (the index sync's own decoder), validates each volume
document with pydantic (no shapely), and serialises the declaration as the API answers it.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from pathlib import Path

from deconflict.requests import DeclarationIn
from deconflict.service import readback
from deconflict.service.bootstrap import initialise
from deconflict.service.declarations import create_declaration
from deconflict.service.deployment import Deployment
from deconflict.service.parties import authenticate, register_party
from deconflict.storage.database import Database


def polygon(lon: float, lat: float, vertices: int, radius: float = 0.2) -> dict[str, object]:
    ring = [
        [lon + radius * math.cos(2 * math.pi * k / vertices),
         lat + radius * math.sin(2 * math.pi * k / vertices)]
        for k in range(vertices)
    ]  # fmt: skip
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def body(volumes: int, vertices: int) -> DeclarationIn:
    documents = [
        {
            "geometry": polygon(36 + v * 0.01, 34, vertices)
            if vertices > 1
            else {"type": "Point", "coordinates": [36 + v * 0.01, 34]},
            "buffer_m": 100,
            "altitude": {"lower_m": 0, "upper_m": 3000},
            "time": {"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"},
        }
        for v in range(volumes)
    ]
    return DeclarationIn.model_validate(
        {"kind": "site", "volumes": documents, "metadata": {"ref": "x" * 100}}
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'd.db'}")
        done = initialise(db, Path(folder) / "log.key", Path(folder) / "policy.toml")
        deployment = Deployment(db, Path(folder) / "log.key")
        coordinator = authenticate(deployment, done.coordinator_token)
        with deployment.writing() as write:
            party, _, _, _ = register_party(
                write, name="Relief", role="humanitarian", actor=coordinator.id, webhook_url=None
            )
        print("| volumes x vertices | stored JSON | write (median) | read-back (median) | share |")
        print("|---|---|---|---|---|")
        for volumes, vertices in [(1, 1), (1, 100), (10, 100), (100, 98)]:
            writes, proofs, size = [], [], 0
            for _ in range(5):
                start = time.perf_counter()
                made = create_declaration(deployment, party, body(volumes, vertices))
                writes.append(time.perf_counter() - start)
                with deployment.db.read() as conn:
                    seq = deployment.index.applied_seq - 1
                    start = time.perf_counter()
                    readback.prove_declarations(conn, seq)
                    proofs.append(time.perf_counter() - start)
                size = len(json.dumps(made.declaration.volumes))
            w, p = statistics.median(writes), statistics.median(proofs)
            print(f"| {volumes} x {vertices} | {size / 1024:.0f} KB | {w * 1e3:.1f} ms "
                  f"| {p * 1e3:.2f} ms | {p / w:.0%} |")  # fmt: skip
        db.dispose()


if __name__ == "__main__":
    main()
