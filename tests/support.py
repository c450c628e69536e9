"""Shared test support: real SQLite files and PostgreSQL databases, an injected clock, the
in-process ASGI client, helpers to register parties and declare things, and the geodesic
builders that the tests of the conflict rule and of the engine share (their brute-force
oracle is ``tests/engine/brute_force.py``).

The fixtures are registered in ``conftest.py``; test modules import helpers from here
(a module named ``conftest`` would be ambiguous between this folder and ``e2e/``)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyproj import Geod
from starlette.testclient import TestClient

from deconflict.api.app import create_app
from deconflict.policy import KINDS, Policy, default_policy
from deconflict.requests import VolumeIn
from deconflict.service.bootstrap import initialise
from deconflict.service.deployment import Deployment
from deconflict.storage.database import Database
from deconflict.volumes import Volume, build_volumes

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
GEOD = Geod(ellps="WGS84")

Position = tuple[float, float]
Doc = dict[str, Any]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def volume(
    geometry: dict[str, Any],
    *,
    buffer_m: float = 0,
    lower_m: float | None = 0,
    upper_m: float | None = 3000,
    start: datetime | None = None,
    start_h: float = 0,
    hours: float | None = 4,
) -> dict[str, Any]:
    """A Volume document starting ``start_h`` hours after ``start`` and lasting ``hours``
    (None: open-ended); by default three days after T0 (beyond every minimum notice)."""
    start = (start or T0 + timedelta(days=3)) + timedelta(hours=start_h)
    end = None if hours is None else iso(start + timedelta(hours=hours))
    return {
        "geometry": geometry,
        "buffer_m": buffer_m,
        "altitude": {"lower_m": lower_m, "upper_m": upper_m},
        "time": {"start": iso(start), "end": end},
    }


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def square(lon: float, lat: float, half: float = 0.05) -> dict[str, Any]:
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


# -- geodesic builders (the rule's and the engine's tests) ------------------------------------


def offset(origin: Position, azimuth: float, distance_m: float) -> Position:
    """The point ``distance_m`` from ``origin`` along the geodesic at ``azimuth`` (degrees)."""
    lon, lat, _ = GEOD.fwd(origin[0], origin[1], azimuth, distance_m)
    return (float(lon), float(lat))


def geodesic_m(a: Position, b: Position) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def quad(center: Position, radius_m: float, rotation: float = 0.0) -> list[list[float]]:
    """The closed ring of a square whose corners are ``radius_m`` from ``center`` (may
    surround a pole)."""
    corners = [list(offset(center, rotation + 90.0 * k, radius_m)) for k in range(4)]
    return [*corners, corners[0]]


DEFAULT_LIMITS = default_policy().limits


def max_horizontal_m(policy: Policy, kind: str) -> float:
    """The widest horizontal separation between ``kind`` and any kind."""
    widths = [s.horizontal_m for k in KINDS if (s := policy.separation_for(kind, k))]
    return max(widths, default=0.0)


def build(docs: Sequence[Doc]) -> tuple[Volume, ...]:
    """Volumes built the slow way, as the service validates them: pydantic, shapely."""
    items = [VolumeIn.model_validate(doc) for doc in docs]
    return tuple(build_volumes(items, DEFAULT_LIMITS))


# What ``Actor.declare_ok`` says when an operation over a protected declaration needs it.
JUSTIFICATION = "Reviewed with the coordinator; the site's owner is alerted."


@dataclass
class Actor:
    """A registered party and a client that speaks as it."""

    id: str
    name: str
    role: str
    token: str
    client: TestClient
    headers: dict[str, str] = field(default_factory=dict)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=self.headers, **kwargs)

    def post(self, url: str, body: Any = None, **kwargs: Any) -> Any:
        return self.client.post(url, json=body, headers=self.headers, **kwargs)

    def put(self, url: str, body: Any = None, **kwargs: Any) -> Any:
        return self.client.put(url, json=body, headers=self.headers, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.client.delete(url, headers=self.headers, **kwargs)

    def declare(self, kind: str, volumes: list[dict[str, Any]], **fields: Any) -> Any:
        return self.post("/v1/declarations", {"kind": kind, "volumes": volumes, **fields})

    def declare_ok(self, kind: str, volumes: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        """Declare, acknowledging whatever the service says was missed, and justifying an
        operation over a protected declaration when the service asks for it."""
        answer = self.declare(kind, volumes, **fields)
        if answer.status_code == 409 and answer.json()["code"] == "missing_awareness":
            fields["key"] = [m["version"] for m in answer.json()["missing"]] + fields.get("key", [])
            answer = self.declare(kind, volumes, **fields)
        if answer.status_code == 409 and answer.json()["code"] == "justification_required":
            fields["justification"] = JUSTIFICATION
            answer = self.declare(kind, volumes, **fields)
        assert answer.status_code == 201, answer.text
        result: dict[str, Any] = answer.json()
        return result


@dataclass
class Service:
    deployment: Deployment
    client: TestClient
    clock: FakeClock
    coordinator: Actor
    tmp: Path
    db_url: str

    def register(self, name: str, role: str, **fields: Any) -> Actor:
        answer = self.coordinator.post("/v1/parties", {"name": name, "role": role, **fields})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        return Actor(
            id=body["id"],
            name=name,
            role=role,
            token=body["token"],
            client=self.client,
            headers={"Authorization": f"Bearer {body['token']}"},
        )


def make_service(
    tmp_path: Path,
    clock: FakeClock,
    policy_text: str | None = None,
    db_url: str | None = None,
) -> Iterator[Service]:
    db_url = db_url or f"sqlite:///{tmp_path / 'deconflict.db'}"
    policy_file = tmp_path / "policy.toml"
    if policy_text is not None:
        policy_file.write_text(policy_text, "utf-8")
    db = Database(db_url)
    key_file = tmp_path / "log.key"
    done = initialise(db, key_file, policy_file)
    deployment = Deployment(db, key_file, clock=clock)
    app = create_app(deployment, webhooks=False)
    with TestClient(app) as client:
        coordinator_id = client.get(
            "/v1/me", headers={"Authorization": f"Bearer {done.coordinator_token}"}
        ).json()["id"]
        coordinator = Actor(
            id=coordinator_id,
            name="Coordinator",
            role="coordinator",
            token=done.coordinator_token,
            client=client,
            headers={"Authorization": f"Bearer {done.coordinator_token}"},
        )
        yield Service(deployment, client, clock, coordinator, tmp_path, db_url)
    db.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- the two backends -------------------------------------------------------------------

# A PostgreSQL server where tests may create and drop databases (as a superuser or a role
# with CREATEDB). `.ci/run` starts one; locally, point this at yours.
POSTGRES_ADMIN_URL = os.environ.get("DECONFLICT_TEST_POSTGRES", "postgresql:///postgres")
_postgres_problem: list[str] = []


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used for tests, or None when it can (checked once)."""
    if not _postgres_problem:
        try:
            import psycopg

            with psycopg.connect(_psycopg_dsn(POSTGRES_ADMIN_URL), connect_timeout=3):
                _postgres_problem.append("")
        except Exception as exc:  # any failure means: no PostgreSQL for this run
            _postgres_problem.append(f"{type(exc).__name__}: {exc}".strip())
    return _postgres_problem[0] or None


def _psycopg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    import psycopg

    problem = postgres_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable ({problem}): the PostgreSQL half was NOT run")
    name = f"deconflict_test_{uuid.uuid4().hex[:12]}"
    admin = _psycopg_dsn(POSTGRES_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(POSTGRES_ADMIN_URL, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL on each backend: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'deconflict.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock, db_url: str) -> Iterator[Service]:
    yield from make_service(tmp_path, clock, db_url=db_url)


@pytest.fixture
def cast(service: Service) -> dict[str, Actor]:
    """The usual parties: two air forces, two aid organisations and an observer."""
    return usual_cast(service)


def usual_cast(service: Service) -> dict[str, Actor]:
    """Registers the usual parties (two air forces, two aid organisations, an observer) and
    returns them with the coordinator, by short name."""
    return {
        "north": service.register("Northern Air Force", "operator"),
        "south": service.register("Southern Air Command", "operator"),
        "relief": service.register("Relief Without Borders", "humanitarian"),
        "water": service.register("Clean Water Alliance", "humanitarian"),
        "observer": service.register("Inquiry Office", "observer"),
        "coordinator": service.coordinator,
    }


def problem_of(answer: Any) -> dict[str, Any]:
    """The problem document of an error answer, checking its shape on the way."""
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
    body: dict[str, Any] = json.loads(answer.text)
    assert body["status"] == answer.status_code
    assert {"title", "code", "detail"} <= set(body)
    return body


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly when the PostgreSQL half of the suite did not run."""
    problem = _postgres_problem[0] if _postgres_problem else ""
    if problem:
        terminalreporter.write_sep("!", "PostgreSQL half NOT run", red=True, bold=True)
        terminalreporter.write_line(
            f"PostgreSQL was not reachable at {POSTGRES_ADMIN_URL}: {problem}\n"
            "Every test of the `service` fixture ran on SQLite only. Start PostgreSQL "
            "(`make postgres`) or set DECONFLICT_TEST_POSTGRES, and run again.",
            red=True,
        )
