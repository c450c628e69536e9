"""Shared fixtures: real SQLite files in temporary folders, an injected clock, the in-process
ASGI client, and helpers to register parties and declare things."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from deconflict.api.app import create_app
from deconflict.bootstrap import default_policy_file, initialise
from deconflict.deployment import Deployment
from deconflict.storage.database import Database

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


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
    hours: float | None = 4,
) -> dict[str, Any]:
    """A Volume document; by default two days after T0 (beyond every minimum notice)."""
    start = start or T0 + timedelta(days=3)
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
        """Declare, acknowledging whatever the service says was missed."""
        answer = self.declare(kind, volumes, **fields)
        if answer.status_code == 409 and answer.json()["code"] == "missing_awareness":
            key = [m["version"] for m in answer.json()["missing"]] + fields.pop("key", [])
            answer = self.declare(kind, volumes, key=key, **fields)
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
    tmp_path: Path, clock: FakeClock, policy_text: str | None = None
) -> Iterator[Service]:
    db_url = f"sqlite:///{tmp_path / 'deconflict.db'}"
    policy_file = default_policy_file(db_url)
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


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock) -> Iterator[Service]:
    yield from make_service(tmp_path, clock)


@pytest.fixture
def cast(service: Service) -> dict[str, Actor]:
    """The usual parties: two air forces, two aid organisations and an observer."""
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
