"""Seeding a served deployment through the HTTP API, for the end-to-end tests and the
screenshot in ``docs/``: small builders for declarations, a ``declare`` that goes through
the awareness flow like a user who confirms, and a demo-like picture of a theatre."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
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


def declare(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """POST a declaration; on 409 ``missing_awareness`` add the missed versions to the key
    and send again, as a user does who confirms having seen them. Returns the 201 body."""
    key = list(body.get("key", []))
    for _ in range(5):
        response = client.post("/v1/declarations", json={**body, "key": key})
        if response.status_code == 201:
            created: dict[str, Any] = response.json()
            return created
        problem = response.json()
        if response.status_code != 409 or problem.get("code") != "missing_awareness":
            raise AssertionError(f"declaring failed: {response.status_code} {response.text}")
        key += [m["version"] for m in problem["missing"]]
    raise AssertionError("the awareness key never converged")


def read_inbox(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/v1/inbox", params={"limit": 1000})
    assert response.status_code == 200, response.text
    notifications: list[dict[str, Any]] = response.json()["notifications"]
    return notifications


def acknowledge(client: httpx.Client, notification_id: str) -> None:
    response = client.post(f"/v1/notifications/{notification_id}/ack", json={"comment": ""})
    assert response.status_code == 200, response.text


# ---- a demo-like theatre -----------------------------------------------------------------

QADIMA = (36.72, 34.73)  # a fictional city in the west of the theatre
TELL_BARAN = (40.14, 35.33)  # a fictional city in the east

SITES = [
    ("Al-Amal General Hospital", "hospital", 36.712, 34.738),
    ("Qadima Children's Hospital", "hospital", 36.735, 34.722),
    ("Northern District Clinic", "clinic", 36.745, 34.752),
    ("Martyrs' Square School", "school", 36.700, 34.725),
    ("Qadima Central Warehouse", "warehouse", 36.690, 34.745),
    ("Riverside Camp", "camp", 36.765, 34.705),
    ("Tell Baran Hospital", "hospital", 40.150, 35.338),
    ("Eastern Gate School", "school", 40.128, 35.325),
    ("Tell Baran Water Point", "water point", 40.162, 35.318),
    ("UN Logistics Hub", "warehouse", 40.110, 35.345),
]


def seed_demo(server: Any) -> dict[str, dict[str, Any]]:
    """Parties, sites in two cities, a convoy corridor, an evacuation, a designated area,
    operations (some in conflict, one with late notice) and partly acknowledged
    notifications. ``server`` is the ``Server`` of conftest. Returns the parties by role
    name, each with its token."""
    t0 = this_hour()
    parties = {
        "air1": server.create_party("Northern Air Command", "operator"),
        "air2": server.create_party("Coalition Air Wing", "operator"),
        "medical": server.create_party("Medical Relief International", "humanitarian"),
        "aid": server.create_party("Aid Without Borders", "humanitarian"),
    }
    air1 = server.client(parties["air1"]["token"])
    air2 = server.client(parties["air2"]["token"])
    medical = server.client(parties["medical"]["token"])
    aid = server.client(parties["aid"]["token"])
    coordinator = server.client(server.coordinator_token)

    for i, (name, category, lon, lat) in enumerate(SITES):
        owner = medical if i % 3 != 2 else aid
        declare(
            owner,
            declaration(
                "site",
                name,
                category,
                [volume(point(lon, lat), t0 - timedelta(days=3), None, buffer_m=300)],
            ),
        )

    declare(
        aid,
        declaration(
            "movement",
            "Convoy 7 Qadima to Tell Baran",
            "convoy",
            [
                volume(
                    line(
                        (36.76, 34.74),
                        (37.25, 34.95),
                        (37.9, 35.05),
                        (38.55, 35.12),
                        (39.3, 35.2),
                        (40.1, 35.32),
                    ),
                    t0 + timedelta(hours=50),
                    t0 + timedelta(hours=64),
                    buffer_m=2500,
                    lower_m=None,
                    upper_m=200,
                )
            ],
        ),
    )
    declare(
        medical,
        declaration(
            "movement",
            "Evacuation route south",
            "evacuation",
            [
                volume(
                    line((36.73, 34.72), (36.62, 34.45), (36.45, 34.2)),
                    t0 + timedelta(hours=52),
                    t0 + timedelta(hours=58),
                    buffer_m=1500,
                    upper_m=200,
                )
            ],
        ),
    )
    declare(
        coordinator,
        declaration(
            "restriction",
            "Designated area QADIMA",
            "designated area",
            [volume(box(36.35, 34.45, 37.15, 35.0), t0 - timedelta(days=1), None)],
            restricts={
                "parties": [parties["air2"]["id"]],
                "roles": [],
                "allowed_categories": ["non-combat"],
            },
        ),
    )

    day = timedelta(days=1)
    hour = timedelta(hours=1)
    operations = [
        # (client, name, category, geometry, buffer, start offset, hours, lower, upper)
        (
            air1,
            "Strike package ALPHA",
            "combat",
            circle_polygon(36.72, 34.735, 4500),
            0,
            day + 2 * hour,
            3,
            0,
            6000,
        ),
        (
            air1,
            "Patrol NORTH-1",
            "reconnaissance",
            box(37.6, 36.2, 38.6, 36.7),
            0,
            day + 4 * hour,
            8,
            3000,
            9000,
        ),
        (
            air1,
            "Patrol NORTH-2",
            "reconnaissance",
            box(38.8, 36.3, 39.8, 36.8),
            0,
            2 * day,
            8,
            3000,
            9000,
        ),
        (
            air1,
            "Recon EAST",
            "reconnaissance",
            point(40.6, 34.8),
            8000,
            day + 6 * hour,
            4,
            2000,
            7000,
        ),
        (
            air1,
            "Transport corridor MIKE",
            "transport",
            line((38.2, 33.4), (39.5, 33.9)),
            4000,
            2 * day + 3 * hour,
            6,
            1000,
            4000,
        ),
        (
            air1,
            "Strike package BRAVO",
            "combat",
            circle_polygon(38.3, 35.1, 6000),
            0,
            2 * day + 8 * hour,
            3,
            0,
            6000,
        ),
        (air1, "Quick reaction ECHO", "combat", point(39.05, 34.35), 5000, 2 * hour, 3, 0, 5000),
        (
            air2,
            "Combat air patrol KILO",
            "combat",
            box(36.5, 34.8, 36.95, 34.95),
            0,
            day + 3 * hour,
            5,
            4000,
            9000,
        ),
        (
            air2,
            "Medevac flight LIMA",
            "non-combat",
            line((36.5, 34.55), (36.9, 34.6)),
            1500,
            day + 5 * hour,
            2,
            0,
            2000,
        ),
        (
            air2,
            "Air patrol SIERRA",
            "reconnaissance",
            box(37.75, 36.05, 38.4, 36.35),
            0,
            day + 5 * hour,
            6,
            5000,
            8000,
        ),
        (
            air2,
            "Tanker track TANGO",
            "transport",
            line((41.0, 35.9), (41.6, 36.4)),
            6000,
            3 * day,
            10,
            6000,
            9000,
        ),
        (
            air2,
            "Strike package ZULU",
            "combat",
            box(39.95, 35.25, 40.3, 35.42),
            0,
            2 * day + 14 * hour,
            2,
            0,
            6000,
        ),
    ]
    for client, name, category, geometry, buffer_m, offset, hours, lower, upper in operations:
        start = t0 + offset
        declare(
            client,
            declaration(
                "operation",
                name,
                category,
                [
                    volume(
                        geometry,
                        start,
                        start + hours * hour,
                        buffer_m=buffer_m,
                        lower_m=lower,
                        upper_m=upper,
                    )
                ],
            ),
        )

    # Northern Air Command acknowledges everything; the Coalition Air Wing only what
    # concerns sites, and reads but leaves the rest.
    for note in read_inbox(air1):
        acknowledge(air1, note["id"])
    for note in read_inbox(air2):
        if note["declaration"]["kind"] == "site":
            acknowledge(air2, note["id"])
    for client in (medical, aid):
        for note in read_inbox(client)[:3]:
            acknowledge(client, note["id"])
    return parties
