"""One hostile request must not cost unbounded work or hold the write lock (issue 11, item 6):
the work budget (413), the search before the write lock and its settling inside it, per-party
rate limits and the failed-authentication throttle (429). Timings are in
``benchmarks/hostile_requests.py``, not here."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from deconflict.api.declaration_json import declaration_json
from deconflict.requests import DeclarationIn, DeclarationUpdate
from deconflict.service import declarations
from deconflict.service.parties import Party, authenticate
from support import T0, Actor, Service, iso, point, problem_of, volume

CENTRE = (36.3, 33.5)


def put_policy(actor: Actor, text: str) -> Any:
    answer = actor.client.put(
        "/v1/policy", content=text.encode(), headers={**actor.headers, "Content-Type": "text/plain"}
    )
    assert actor.get("/v1/policy").status_code == 200  # every worker reads it on its next request
    return answer


def change_policy(actor: Actor, **values: str) -> None:
    """Set ``name = value`` lines of the policy in force (each must be there already)."""
    text = actor.get("/v1/policy").json()["toml"]
    lines = text.splitlines()
    for name, value in values.items():
        [at] = [n for n, line in enumerate(lines) if line.startswith(f"{name} = ")]
        lines[at] = f"{name} = {value}"
    answer = put_policy(actor, "\n".join(lines) + "\n")
    assert answer.status_code == 200, answer.text


def ring_line(radius_deg: float, vertices: int = 99) -> dict[str, Any]:
    """A closed line of ``vertices`` positions around the centre: every position of it is
    equally far from the centre, so nothing spares measuring them all."""
    ring = [
        [
            CENTRE[0]
            + radius_deg / math.cos(math.radians(CENTRE[1])) * math.cos(2 * math.pi * k / vertices),
            CENTRE[1] + radius_deg * math.sin(2 * math.pi * k / vertices),
        ]
        for k in range(vertices)
    ]
    return {"type": "LineString", "coordinates": [*ring, ring[0]]}


def rings(count: int) -> list[dict[str, Any]]:
    return [volume(ring_line(0.2)) for _ in range(count)]


def points_at_centre(count: int, buffer_m: float = 30_000) -> list[dict[str, Any]]:
    return [volume(point(*CENTRE), buffer_m=buffer_m) for _ in range(count)]


# -- the work budget -------------------------------------------------------------------------


def test_a_check_or_write_over_the_work_budget_is_refused_naming_volumes(
    cast: dict[str, Actor],
) -> None:
    change_policy(cast["coordinator"], work_per_request="1000000")
    stored = cast["north"].declare_ok("operation", rings(10))["declaration"]
    # Ten points against ten rings of 99 equidistant vertices: far over a million.
    heavy = cast["relief"].post(
        "/v1/conflicts/check", {"kind": "site", "volumes": points_at_centre(10)}
    )
    assert heavy.status_code == 413
    problem = problem_of(heavy)
    assert problem["code"] == "too_large"
    assert problem["errors"][0]["field"] == "volumes"
    assert "1,000,000" in problem["detail"] and "limits.work_per_request" in problem["detail"]
    refused = cast["south"].declare("operation", points_at_centre(10))
    assert refused.status_code == 413
    assert problem_of(refused)["errors"][0]["field"] == "volumes"
    listed = cast["north"].get("/v1/declarations").json()["declarations"]
    assert [d["id"] for d in listed] == [stored["id"]], "the refused write left nothing"
    # A small request near the same rings is within the budget, and finds the conflict.
    small = cast["relief"].post(
        "/v1/conflicts/check", {"kind": "site", "volumes": points_at_centre(1)}
    )
    assert small.status_code == 200, small.text
    assert cast["south"].declare("operation", points_at_centre(1)).status_code == 409
    # With the budget raised, the heavy check is answered.
    change_policy(cast["coordinator"], work_per_request="1000000000")
    again = cast["north"].post(
        "/v1/conflicts/check", {"kind": "operation", "volumes": points_at_centre(10)}
    )
    assert again.status_code == 200
    # North's own operation never conflicts with itself; South's would.
    assert (
        cast["south"]
        .post("/v1/conflicts/check", {"kind": "operation", "volumes": points_at_centre(10)})
        .json()["conflicts"][0]["min_distance_m"]
        > 15_000
    )


def test_withdrawing_is_never_refused_for_work(cast: dict[str, Actor]) -> None:
    """The search of the version being withdrawn is not the request's own: it is not
    budgeted, so what others stored near a declaration never keeps its owner from
    withdrawing it (listing its conflicts is budgeted, as a check is)."""
    made = cast["relief"].declare_ok("site", points_at_centre(10))["declaration"]
    cast["north"].declare_ok("operation", rings(10))
    change_policy(cast["coordinator"], work_per_request="100000")
    # Its conflicts, asked for, are a search like a check: bounded.
    listed = cast["relief"].get(f"/v1/declarations/{made['id']}/conflicts")
    assert listed.status_code == 413
    assert problem_of(listed)["errors"][0]["field"] == "volumes"
    answer = cast["relief"].delete(f"/v1/declarations/{made['id']}?version={made['version']}")
    assert answer.status_code == 200, answer.text


def test_the_work_budget_is_validated_naming_the_field(cast: dict[str, Actor]) -> None:
    text = cast["coordinator"].get("/v1/policy").json()["toml"]
    for name, bad, field in [
        ("work_per_request", "10", "limits.work_per_request"),
        ("work_per_request", "1.5e12", "limits.work_per_request"),
        ("writes_per_second", "0", "rate_limits.writes_per_second"),
        ("checks_burst", "0", "rate_limits.checks_burst"),
        ("failed_auth_per_window", "-1", "rate_limits.failed_auth_per_window"),
        ("failed_auth_lockout_s", "0", "rate_limits.failed_auth_lockout_s"),
    ]:
        lines = [
            f"{name} = {bad}" if line.startswith(f"{name} = ") else line
            for line in text.splitlines()
        ]
        answer = put_policy(cast["coordinator"], "\n".join(lines) + "\n")
        assert answer.status_code == 400, (name, answer.text)
        assert [e["field"] for e in problem_of(answer)["errors"]] == [field]


# -- the search before the write lock -----------------------------------------------------


@contextmanager
def between_search_and_lock(action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` once, in the request's own thread, after its conflicts are searched and
    before it takes the write lock: a conflicting write that lands in between."""
    done: list[bool] = []

    def hook() -> None:
        if not done:
            done.append(True)
            action()

    declarations._between_hook.append(hook)
    try:
        yield
    finally:
        declarations._between_hook.remove(hook)
    assert done, "the write ran the hook"


def party_of(service: Service, actor: Actor) -> Party:
    return authenticate(service.deployment, actor.token)


def body(kind: str, volumes: list[dict[str, Any]], key: list[str] | None = None) -> DeclarationIn:
    return DeclarationIn.model_validate({"kind": kind, "volumes": volumes, "key": key or []})


def test_a_conflicting_write_between_the_search_and_the_lock_is_seen(
    service: Service, cast: dict[str, Actor]
) -> None:
    operation = [volume(point(36.0, 34.0), buffer_m=1000)]
    landed: list[dict[str, Any]] = []

    def south_declares() -> None:
        answer = declarations.create_declaration(
            service.deployment, party_of(service, cast["south"]), body("operation", operation)
        )
        landed.append(declaration_json(answer.declaration))

    with between_search_and_lock(south_declares):
        answer = cast["north"].declare("operation", operation)
    assert answer.status_code == 409, answer.text
    problem = problem_of(answer)
    assert problem["code"] == "missing_awareness"
    assert [m["id"] for m in problem["missing"]] == [landed[0]["id"]]
    # Sent again with South's version, it goes through and lists the conflict.
    accepted = cast["north"].declare("operation", operation, key=[landed[0]["version"]])
    assert accepted.status_code == 201
    assert [c["declaration"]["id"] for c in accepted.json()["conflicts"]] == [landed[0]["id"]]


def test_a_declaration_withdrawn_between_the_search_and_the_lock_is_not_required(
    service: Service, cast: dict[str, Actor]
) -> None:
    site = cast["relief"].declare_ok("site", [volume(point(36.0, 34.0), buffer_m=500)])[
        "declaration"
    ]
    other = cast["water"].declare_ok("site", [volume(point(36.001, 34.0), buffer_m=500)])[
        "declaration"
    ]
    operation = [volume(point(36.0, 34.0), buffer_m=1000)]

    def relief_withdraws() -> None:
        declarations.withdraw_declaration(
            service.deployment, party_of(service, cast["relief"]), site["id"], site["version"]
        )

    # North knows only Water's site: Relief's, which the search found, is gone by the lock.
    with between_search_and_lock(relief_withdraws):
        answer = cast["north"].declare(
            "operation", operation, key=[other["version"]], justification="both sites told"
        )
    assert answer.status_code == 201, answer.text
    assert [c["declaration"]["id"] for c in answer.json()["conflicts"]] == [other["id"]]


def test_an_update_and_a_withdrawal_settle_what_changed_meanwhile(
    service: Service, cast: dict[str, Actor]
) -> None:
    mine = cast["north"].declare_ok("operation", [volume(point(30.0, 30.0))])["declaration"]
    moved = [volume(point(36.0, 34.0), buffer_m=1000)]
    landed: list[dict[str, Any]] = []

    def relief_declares() -> None:
        answer = declarations.create_declaration(
            service.deployment,
            party_of(service, cast["relief"]),
            body("site", [volume(point(36.0, 34.0), buffer_m=100)]),
        )
        landed.append(declaration_json(answer.declaration))

    url = f"/v1/declarations/{mine['id']}"
    with between_search_and_lock(relief_declares):
        answer = cast["north"].put(url, {"version": mine["version"], "volumes": moved})
    assert answer.status_code == 409
    assert [m["id"] for m in problem_of(answer)["missing"]] == [landed[0]["id"]]

    # A change to the operation itself between the search and the lock: the version sent
    # is no longer current.
    def north_changes_it() -> None:
        declarations.update_declaration(
            service.deployment,
            party_of(service, cast["north"]),
            mine["id"],
            body_update(mine["version"], [volume(point(31.0, 30.0))]),
        )

    with between_search_and_lock(north_changes_it):
        answer = cast["north"].delete(f"{url}?version={mine['version']}")
    assert answer.status_code == 409
    assert problem_of(answer)["code"] == "stale_version"


def body_update(version: str, volumes: list[dict[str, Any]]) -> DeclarationUpdate:
    return DeclarationUpdate.model_validate({"version": version, "volumes": volumes})


# -- rate limits and the failed-authentication throttle -----------------------------------


def use_service_clock(service: Service) -> None:
    """Drive the rate limiter by the test's clock, so that waiting is a step, not a sleep."""
    service.client.app.state.rate_limiter.clock = lambda: service.clock.now.timestamp()  # type: ignore[attr-defined]


def test_a_party_over_its_rate_gets_429_with_retry_after_then_recovers(
    service: Service, cast: dict[str, Actor]
) -> None:
    use_service_clock(service)
    change_policy(
        cast["coordinator"],
        writes_per_second="0.5",
        writes_burst="2",
        checks_per_second="1",
        checks_burst="3",
    )
    north, south = cast["north"], cast["south"]
    for n in range(2):
        assert north.declare("operation", [volume(point(30.0 + n, 30.0))]).status_code == 201
    refused = north.declare("operation", [volume(point(33.0, 30.0))])
    assert refused.status_code == 429
    problem = problem_of(refused)
    assert problem["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "2"
    # Reads are not limited; other parties have their own buckets.
    assert north.get("/v1/declarations").status_code == 200
    assert south.declare("operation", [volume(point(40.0, 30.0))]).status_code == 201
    # Checks have a bucket of their own.
    check = {"kind": "operation", "volumes": [volume(point(50.0, 30.0))]}
    for _ in range(3):
        assert north.post("/v1/conflicts/check", check).status_code == 200
    over = north.post("/v1/conflicts/check", check)
    assert over.status_code == 429 and over.headers["retry-after"] == "1"
    # After the wait it says, the party may write and check again.
    service.clock.advance(seconds=2)
    assert north.declare("operation", [volume(point(33.0, 30.0))]).status_code == 201
    assert north.post("/v1/conflicts/check", check).status_code == 200


def test_an_address_sending_bad_tokens_is_locked_out_for_a_while(
    service: Service, cast: dict[str, Actor]
) -> None:
    use_service_clock(service)
    change_policy(
        cast["coordinator"],
        failed_auth_per_window="3",
        failed_auth_window_s="60",
        failed_auth_lockout_s="30",
    )
    bad = {"Authorization": "Bearer not-a-token"}
    for _ in range(3):
        assert service.client.get("/v1/me", headers=bad).status_code == 401
    # Locked out: bad and good tokens alike, on every route that authenticates.
    locked = service.client.get("/v1/me", headers=bad)
    assert locked.status_code == 429
    assert problem_of(locked)["code"] == "rate_limited"
    assert 0 < int(locked.headers["retry-after"]) <= 30
    assert cast["north"].get("/v1/me").status_code == 429
    check = {"kind": "operation", "volumes": [volume(point(50.0, 30.0))]}
    assert cast["north"].post("/v1/conflicts/check", check).status_code == 429
    service.clock.advance(seconds=31)
    assert cast["north"].get("/v1/me").status_code == 200
    assert cast["north"].post("/v1/conflicts/check", check).status_code == 200


def test_bad_tokens_spread_over_time_never_lock_out(
    service: Service, cast: dict[str, Actor]
) -> None:
    use_service_clock(service)
    change_policy(cast["coordinator"], failed_auth_per_window="3", failed_auth_window_s="10")
    bad = {"Authorization": "Bearer not-a-token"}
    check = {"kind": "operation", "volumes": [volume(point(50.0, 30.0))]}
    for _ in range(6):
        assert (
            service.client.post("/v1/conflicts/check", json=check, headers=bad).status_code == 401
        )
        assert service.client.get("/v1/me", headers=bad).status_code == 401
        service.clock.advance(seconds=11)
    assert cast["north"].get("/v1/me").status_code == 200


def test_a_window_with_an_open_end_is_timed_as_stored(cast: dict[str, Actor]) -> None:
    """Pruning by the time overlap keeps the widest overlap of every pair: an open-ended
    volume among closed ones still makes the conflict open-ended."""
    start = T0 + timedelta(days=3)
    stored = [
        volume(point(36.0, 34.0), buffer_m=1000, start=start, start_h=h, hours=1) for h in range(5)
    ] + [volume(point(36.0, 34.0), buffer_m=1000, start=start, start_h=2, hours=None)]
    cast["relief"].declare_ok("site", stored)
    query = [volume(point(36.0, 34.0), buffer_m=1000, start=start, hours=None) for _ in range(3)]
    found = cast["north"].post("/v1/conflicts/check", {"kind": "operation", "volumes": query})
    [conflict] = found.json()["conflicts"]
    assert conflict["time_overlap"] == {"start": iso(start), "end": None}
    assert conflict["min_distance_m"] == 0
