"""Overdue escalation across real processes: two ``deconflict serve`` processes on one
database both sweep for late acknowledgments, one of them restarts, and each late one is
still told exactly once to the coordinator and once to the declaration's owner.

On SQLite and on PostgreSQL (with ``CI=true`` PostgreSQL is required). The policy's deadline
is 1.2 seconds and each process sweeps every half second, so every late acknowledgment is
seen by both processes, again and again, before the test looks.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from deconflict.policy import default_policy_text
from server import DECONFLICT, register, serving
from support import fresh_postgres_database

pytestmark = pytest.mark.slow

DEADLINE_MINUTES = 0.02  # 1.2 s
SWEEP_INTERVAL_S = 0.5
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)


@dataclass(frozen=True)
class Initialised:
    db_url: str
    coordinator: str
    env: dict[str, str]


def init_deployment(tmp: Path, db_url: str) -> Initialised:
    """``deconflict init`` with a policy whose acknowledgment deadline is 1.2 seconds."""
    policy = default_policy_text().replace(
        "deadline_minutes = 60", f"deadline_minutes = {DEADLINE_MINUTES}"
    )
    assert f"deadline_minutes = {DEADLINE_MINUTES}" in policy
    (tmp / "policy.toml").write_text(policy, "utf-8")
    key_file = tmp / "log.key"
    done = subprocess.run(
        [
            *DECONFLICT,
            "init",
            "--db",
            db_url,
            "--key-file",
            str(key_file),
            "--policy",
            str(tmp / "policy.toml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    env = {
        "DECONFLICT_KEY_FILE": str(key_file),
        "DECONFLICT_ESCALATION_INTERVAL_S": str(SWEEP_INTERVAL_S),
    }
    return Initialised(db_url, json.loads(done.stdout)["coordinator_token"], env)


@pytest.fixture(params=["postgresql", "sqlite"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Initialised]:
    if request.param == "sqlite":
        yield init_deployment(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")
    else:
        with fresh_postgres_database() as url:
            yield init_deployment(tmp_path, url)


@contextmanager
def server(deployment: Initialised) -> Iterator[httpx.Client]:
    with (
        serving(deployment.db_url, env=deployment.env) as (base, _),
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def declare_site(client: httpx.Client, token: str, lon: float) -> dict[str, Any]:
    volume = {
        "geometry": {"type": "Point", "coordinates": [lon, 33.5]},
        "buffer_m": 500,
        "altitude": {"lower_m": 0, "upper_m": 50},
        "time": {"start": START.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": None},
    }
    answer = client.post(
        "/v1/declarations",
        json={"kind": "site", "volumes": [volume], "category": "hospital"},
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text
    declaration: dict[str, Any] = answer.json()["declaration"]
    return declaration


def notices(client: httpx.Client, token: str) -> list[dict[str, Any]]:
    """The overdue notifications in a party's inbox."""
    answer = client.get("/v1/inbox", params={"limit": 1000}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return [n for n in answer.json()["notifications"] if n["reason"] == "overdue"]


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def late_ones(client: httpx.Client, token: str) -> list[tuple[str, str]]:
    return sorted(
        (n["overdue"]["notification"], n["overdue"]["recipient"]) for n in notices(client, token)
    )


def test_each_late_acknowledgment_is_escalated_once_across_processes_and_restarts(
    deployment: Initialised,
) -> None:
    coordinator = deployment.coordinator
    with server(deployment) as b:
        with server(deployment) as a:
            base = str(a.base_url).rstrip("/")
            north = register(base, coordinator, "Northern Air Force", "operator")
            relief = register(base, coordinator, "Relief Without Borders", "humanitarian")
            first = declare_site(a, relief["token"], 36.3)
            # North never acknowledges; both processes sweep until both notices are there.
            wait_for(
                "the first escalation",
                lambda: bool(notices(b, coordinator)) and bool(notices(a, relief["token"])),
            )
            # A few more sweeps by both processes, which must find nothing more to do.
            time.sleep(4 * SWEEP_INTERVAL_S)
        # Process a restarts: its first sweep runs at once, over the same late notification.
        with server(deployment) as restarted:
            second = declare_site(restarted, relief["token"], 37.3)
            wait_for(
                "the second escalation",
                lambda: (
                    len(notices(b, coordinator)) >= 2
                    and len(notices(restarted, relief["token"])) >= 2
                ),
            )
            time.sleep(4 * SWEEP_INTERVAL_S)
            inbox = b.get("/v1/inbox", headers=bearer(north["token"])).json()["notifications"]
            late = {n["declaration"]["id"]: n["id"] for n in inbox}
            expected = sorted((late[d["id"]], north["id"]) for d in (first, second))
            # Exactly one each, for the coordinator and for the sites' owner, and nothing more.
            assert late_ones(b, coordinator) == expected
            assert late_ones(restarted, relief["token"]) == expected
            assert notices(b, north["token"]) == []
            for notice in notices(b, coordinator):
                assert notice["declaration"]["id"] in {first["id"], second["id"]}
                assert notice["conflicts"] == []
    verified = subprocess.run(
        [*DECONFLICT, "verify", "--db", deployment.db_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
