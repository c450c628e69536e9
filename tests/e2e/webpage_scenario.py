"""Seeding a served deployment through the HTTP API, for the end-to-end tests: small
builders for declarations, and a ``declare`` that goes through the awareness flow like a
user who confirms."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import httpx

Geometry = dict[str, Any]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def point(lon: float, lat: float) -> Geometry:
    return {"type": "Point", "coordinates": [lon, lat]}


def line(*coords: tuple[float, float]) -> Geometry:
    return {"type": "LineString", "coordinates": [list(c) for c in coords]}


def box(west: float, south: float, east: float, north: float) -> Geometry:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def circle_polygon(lon: float, lat: float, radius_m: float, sides: int = 24) -> Geometry:
    """An approximate circle as a polygon (for operations drawn as areas)."""
    dlat = radius_m / 111_320
    dlon = radius_m / (111_320 * math.cos(math.radians(lat)))
    ring = [
        [
            round(lon + dlon * math.cos(2 * math.pi * i / sides), 6),
            round(lat + dlat * math.sin(2 * math.pi * i / sides), 6),
        ]
        for i in range(sides)
    ]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def volume(
    geometry: Geometry,
    start: datetime,
    end: datetime | None,
    *,
    buffer_m: float = 0,
    lower_m: float | None = None,
    upper_m: float | None = None,
) -> dict[str, Any]:
    return {
        "geometry": geometry,
        "buffer_m": buffer_m,
        "altitude": {"lower_m": lower_m, "upper_m": upper_m},
        "time": {"start": iso(start), "end": iso(end) if end else None},
    }


def declaration(
    kind: str,
    name: str,
    category: str,
    volumes: list[dict[str, Any]],
    *,
    restricts: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": kind,
        "volumes": volumes,
        "key": [],
        "category": category,
        "metadata": {"name": name},
    }
    if restricts is not None:
        body["restricts"] = restricts
    return body


def declare(
    client: httpx.Client, body: dict[str, Any], *, justification: str | None = None
) -> dict[str, Any]:
    """POST a declaration; on 409 ``missing_awareness`` add the missed versions to the key
    and send again, as a user does who confirms having seen them; on 409
    ``justification_required`` send ``justification`` with it. Returns the 201 body."""
    key = list(body.get("key", []))
    extra: dict[str, Any] = {}
    for _ in range(5):
        response = client.post("/v1/declarations", json={**body, **extra, "key": key})
        if response.status_code == 201:
            created: dict[str, Any] = response.json()
            return created
        problem = response.json()
        code = problem.get("code") if response.status_code == 409 else None
        if code == "missing_awareness":
            key += [m["version"] for m in problem["missing"]]
        elif code == "justification_required" and justification is not None and not extra:
            extra = {"justification": justification}
        else:
            raise AssertionError(f"declaring failed: {response.status_code} {response.text}")
    raise AssertionError("the awareness key never converged")


def read_inbox(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/v1/inbox", params={"limit": 1000})
    assert response.status_code == 200, response.text
    notifications: list[dict[str, Any]] = response.json()["notifications"]
    return notifications


def acknowledge(client: httpx.Client, notification_id: str) -> None:
    response = client.post(f"/v1/notifications/{notification_id}/ack", json={"comment": ""})
    assert response.status_code == 200, response.text


def set_acknowledgment_deadline(client: httpx.Client, *, minutes: float) -> None:
    """Set the policy's acknowledgment deadline, as the coordinator (``client``)."""
    toml = client.get("/v1/policy").json()["toml"]
    changed = re.sub(r"(?m)^deadline_minutes\s*=.*$", f"deadline_minutes = {minutes}", toml)
    assert changed != toml
    response = client.put(
        "/v1/policy", content=changed.encode(), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200, response.text
