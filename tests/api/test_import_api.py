"""``POST /v1/declarations/import`` over HTTP, on SQLite and PostgreSQL: the answer's shape,
a dry run that writes nothing, re-imports, who may import, and the limits that come from the
policy (``import_bytes`` instead of ``body_bytes``, ``import_rows``)."""

from __future__ import annotations

import json
from typing import Any

from deconflict.policy import default_policy_text
from support import Actor, Service, problem_of

URL = "/v1/declarations/import"
HEADER = "name,category,kind,lat,lon,buffer_m,start,end,upper_m,external_id"
START = "2026-12-04T06:00:00Z"


def csv_of(*lines: str) -> bytes:
    return ("\r\n".join([HEADER, *lines]) + "\r\n").encode("utf-8")


def site(n: int, lat: float = 33.5, lon: float | None = None, external_id: str = "") -> str:
    lon = 36.0 + n * 0.01 if lon is None else lon
    return f"Clinic {n},hospital,site,{lat},{lon},50,{START},,50,{external_id or f'C{n}'}"


def send(actor: Actor, data: bytes, **params: str) -> Any:
    query = {"format": "csv", **params}
    return actor.client.post(
        URL, content=data, params=query, headers={**actor.headers, "Content-Type": "text/csv"}
    )


def log_size(service: Service) -> int:
    size: int = service.client.get("/v1/log/head").json()["size"]
    return size


def set_policy(service: Service, replacements: dict[str, str]) -> None:
    text = default_policy_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    answer = service.coordinator.client.put(
        "/v1/policy", content=text, headers=service.coordinator.headers
    )
    assert answer.status_code == 200, answer.text


def test_an_import_creates_each_good_row(service: Service, cast: dict[str, Actor]) -> None:
    relief = cast["relief"]
    data = csv_of(site(1), site(2), "Nowhere,hospital,site,,,50,2026-12-04T06:00:00Z,,50,C3")
    answer = send(relief, data)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (2, 0, 0, 1)
    assert [(r["row"], r["status"]) for r in body["results"]] == [
        (1, "created"),
        (2, "created"),
        (3, "error"),
    ]
    first = body["results"][0]
    assert first["conflicts"] == []
    declaration = first["declaration"]
    assert declaration["owner"] == relief.id
    assert declaration["metadata"]["name"] == "Clinic 1"
    fetched = relief.get(f"/v1/declarations/{declaration['id']}").json()["declaration"]
    assert fetched["version"] == declaration["version"]
    assert fetched["volumes"] == declaration["volumes"]
    assert body["results"][2]["errors"][0]["field"] == "lat"
    # Broadcast to the operators, as a POST of a site is.
    told = cast["north"].get("/v1/inbox").json()["notifications"]
    assert {n["declaration"]["id"] for n in told} >= {declaration["id"]}


def test_a_dry_run_writes_nothing(service: Service, cast: dict[str, Actor]) -> None:
    relief = cast["relief"]
    data = csv_of(site(1), site(2))
    size = log_size(service)
    dry = send(relief, data, dry_run="true")
    assert dry.status_code == 200, dry.text
    assert dry.json()["created"] == 2 and dry.json()["dry_run"] is True
    preview = dry.json()["results"][0]["declaration"]
    assert "id" not in preview and "version" not in preview
    assert log_size(service) == size
    assert relief.get("/v1/declarations", params={"owner": relief.id}).json()["declarations"] == []
    real = send(relief, data, dry_run="false").json()
    assert real["created"] == 2
    made = real["results"][0]["declaration"]
    assert {k: v for k, v in made.items() if k not in ("id", "version")}.keys() == preview.keys()
    assert made["volumes"] == preview["volumes"]


def test_a_re_import_is_unchanged_and_a_changed_row_updates(
    service: Service, cast: dict[str, Actor]
) -> None:
    relief = cast["relief"]
    first = send(relief, csv_of(site(1), site(2))).json()
    size = log_size(service)
    again = send(relief, csv_of(site(1), site(2))).json()
    assert (again["created"], again["unchanged"]) == (0, 2)
    assert log_size(service) == size
    moved = send(relief, csv_of(site(1), site(2, lat=33.7))).json()
    assert (moved["created"], moved["updated"], moved["unchanged"]) == (0, 1, 1)
    updated = moved["results"][1]["declaration"]
    assert updated["id"] == first["results"][1]["declaration"]["id"]
    assert updated["volumes"][0]["geometry"]["coordinates"][1] == 33.7


def test_a_withdrawn_declaration_is_not_declared_again(
    service: Service, cast: dict[str, Actor]
) -> None:
    relief = cast["relief"]
    made = send(relief, csv_of(site(1))).json()["results"][0]["declaration"]
    gone = relief.delete(f"/v1/declarations/{made['id']}", params={"version": made["version"]})
    assert gone.status_code == 200
    again = send(relief, csv_of(site(1, lat=33.6))).json()
    assert again["errors"] == 1
    assert again["results"][0]["errors"][0]["field"] == "external_id"
    assert "withdrawn" in again["results"][0]["errors"][0]["message"]


def test_only_humanitarians_and_the_coordinator_import(
    service: Service, cast: dict[str, Actor]
) -> None:
    for name in ("north", "observer"):
        assert problem_of(send(cast[name], csv_of(site(1))))["code"] == "forbidden"
    # The coordinator may import, and each row is held to what its role declares.
    answer = send(cast["coordinator"], csv_of(site(1))).json()
    assert answer["results"][0]["errors"][0]["field"] == "kind"


def test_format_and_dry_run_are_checked(service: Service, cast: dict[str, Actor]) -> None:
    relief = cast["relief"]
    for params, field in [
        ({"format": "xls"}, "format"),
        ({"format": ""}, "format"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"dry_run": "TRUE"}, "dry_run"),
    ]:
        answer = send(relief, csv_of(site(1)), **params)
        assert answer.status_code == 400, (params, answer.text)
        assert [e["field"] for e in problem_of(answer)["errors"]] == [field]
    missing = relief.client.post(URL, content=csv_of(site(1)), headers=relief.headers)
    assert problem_of(missing)["errors"][0]["field"] == "format"
    not_csv = send(relief, b"\x00\x01\x02 not a spreadsheet", format="xlsx")
    assert not_csv.status_code == 400


def test_the_limits_come_from_the_policy(service: Service, cast: dict[str, Actor]) -> None:
    relief = cast["relief"]
    set_policy(
        service,
        {
            "body_bytes = 4194304": "body_bytes = 1024",
            "import_rows = 10000": "import_rows = 30",
            "import_bytes = 20971520": "import_bytes = 4096",
        },
    )
    many = csv_of(*(site(n) for n in range(1, 31)))
    assert 1024 < len(many) < 4096  # over body_bytes: the import's own limit applies
    answer = send(relief, many, dry_run="true")
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 30
    too_many = csv_of(*(site(n) for n in range(1, 32)))
    assert problem_of(send(relief, too_many, dry_run="true"))["code"] == "too_large"
    too_big = csv_of(site(1)) + b"\r\n" * 5000
    assert len(too_big) > 4096
    assert problem_of(send(relief, too_big))["code"] == "too_large"
    # Every other route keeps body_bytes.
    padded = {"kind": "site", "volumes": [], "metadata": {"pad": "x" * 2000}}
    posted = relief.client.post(
        "/v1/declarations", content=json.dumps(padded), headers=relief.headers
    )
    assert problem_of(posted)["code"] == "too_large"


def test_geojson_features_import(service: Service, cast: dict[str, Actor]) -> None:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [36.2, 33.5]},
        "properties": {"name": "Well 1", "category": "water point", "start": START},
    }
    collection = {"type": "FeatureCollection", "features": [feature]}
    answer = send(cast["water"], json.dumps(collection).encode(), format="geojson")
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 1


def test_versions_reviewed_on_the_page_are_a_key_for_every_row(
    service: Service, cast: dict[str, Actor]
) -> None:
    # Humanitarians see operations here, so a site over one needs its version in a key.
    seen_by = 'operation = ["operator", "coordinator"'
    set_policy(service, {seen_by: seen_by + ', "humanitarian"'})
    relief, north = cast["relief"], cast["north"]
    window = {"start": START, "end": "2026-12-04T12:00:00Z"}
    strike = north.declare_ok(
        "operation",
        [
            {
                "geometry": {"type": "Point", "coordinates": [36.01, 33.5]},
                "buffer_m": 500,
                "time": window,
            }
        ],
        justification="Counter-battery fire; the coordinator is asked to confirm.",
        key=[],
    )
    data = csv_of(site(1))
    blind = send(relief, data, dry_run="true").json()["results"][0]
    assert blind["status"] == "error"
    assert [e["field"] for e in blind["errors"]] == ["key"]
    version = strike["declaration"]["version"]
    assert [m["version"] for m in blind["missing"]] == [version]

    assert send(relief, data, key=["nonsense"]).json()["errors"] == 1
    reviewed = send(relief, data, key=[version]).json()
    assert (reviewed["created"], reviewed["errors"]) == (1, 0)
    assert [c["declaration"]["id"] for c in reviewed["results"][0]["conflicts"]] == [
        strike["declaration"]["id"]
    ]
    too_long = send(relief, data, key=["x" * 65])
    assert too_long.status_code == 400
    assert [e["field"] for e in problem_of(too_long)["errors"]] == ["key"]
