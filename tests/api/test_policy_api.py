"""The policy in force: read by all, changed by the coordinator, applied at once."""

from __future__ import annotations

import pytest

from support import Actor, point, problem_of, volume


def put_policy(actor: Actor, text: str) -> object:
    return actor.client.put(
        "/v1/policy", content=text.encode(), headers={**actor.headers, "Content-Type": "text/plain"}
    )


def test_wider_separation_applies_to_the_next_write(cast: dict[str, Actor]) -> None:
    cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])
    # ~14 km apart: clear under the default 9,260 m.
    assert cast["south"].declare("operation", [volume(point(36.15, 34.0))]).status_code == 201
    text = cast["north"].get("/v1/policy").json()["toml"]
    answer = put_policy(
        cast["coordinator"], text.replace("horizontal_m = 9260", "horizontal_m = 20000")
    )
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
    refused = cast["south"].declare("operation", [volume(point(35.85, 34.0))])
    assert refused.status_code == 409


def test_minimum_notice_and_visibility_follow_the_policy(cast: dict[str, Actor]) -> None:
    text = cast["north"].get("/v1/policy").json()["toml"]
    text = text.replace('operation = ["operator", "coordinator"]', 'operation = ["*"]')
    assert put_policy(cast["coordinator"], text).status_code == 200  # type: ignore[attr-defined]
    made = cast["north"].declare_ok("operation", [volume(point(36.0, 34.0))])["declaration"]
    assert cast["relief"].get(f"/v1/declarations/{made['id']}").status_code == 200


def test_only_the_coordinator_changes_the_policy(cast: dict[str, Actor]) -> None:
    text = cast["north"].get("/v1/policy").json()["toml"]
    answer = put_policy(cast["north"], text)
    assert answer.status_code == 403  # type: ignore[attr-defined]


def test_a_bad_policy_is_refused_naming_the_field(cast: dict[str, Actor]) -> None:
    answer = put_policy(cast["coordinator"], "[limits]\nbody_bytes = -1\n")
    assert answer.status_code == 400  # type: ignore[attr-defined]
    fields = [e["field"] for e in problem_of(answer)["errors"]]
    assert "separation" in fields and "limits.body_bytes" in fields
    broken = put_policy(cast["coordinator"], "this is = = not toml")
    assert problem_of(broken)["errors"][0]["field"] == "policy"


def test_a_policy_shows_every_value_its_toml_leaves_out(cast: dict[str, Actor]) -> None:
    """GET /v1/policy shows the defaults of what the TOML leaves out, each number of the
    type of its field (a float stays a float in JSON although its default is whole)."""
    text = (
        "[separation.site-operation]\nhorizontal_m = 5\nvertical_m = 1\n"
        '[visibility]\nsite = ["*"]\n'
    )
    answer = put_policy(cast["coordinator"], text)
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
    shown = answer.json()["policy"]  # type: ignore[attr-defined]
    assert list(shown) == [
        "separation",
        "minimum_notice_hours",
        "visibility",
        "broadcast",
        "acknowledgment",
        "limits",
        "rate_limits",
        "protection",
        "area_of_operations",
    ]
    assert shown["separation"] == {"operation-site": {"horizontal_m": 5.0, "vertical_m": 1.0}}
    # Left out, protection is on: altitude never hides an operation over a site or movement.
    assert shown["protection"] == {
        "kinds": ["site", "movement"],
        "altitude": "ignored",
        "disclose_to_owner": "redacted",
    }
    assert shown["acknowledgment"] == {"deadline_minutes": 60.0}
    raw = answer.text  # type: ignore[attr-defined]
    assert '"buffer_m":500000.0' in raw and '"volumes_per_declaration":100,' in raw
    assert '"writes_per_second":20.0' in raw and '"writes_burst":200,' in raw
    assert cast["north"].get("/v1/policy").json()["policy"] == shown


def with_protection(text: str, table: str) -> str:
    """The policy text with its ``[protection]`` table replaced by ``table``."""
    head, _, rest = text.partition("[protection]")
    after = rest.index("\n[")  # the next table
    return f"{head}[protection]\n{table}\n{rest[after:]}"


@pytest.mark.parametrize(
    ("table", "field"),
    [
        pytest.param('disclose_to_owner = "secret"', "protection.disclose_to_owner", id="level"),
        pytest.param("disclose_to_owner = true", "protection.disclose_to_owner", id="level-bool"),
        pytest.param('altitude = "sometimes"', "protection.altitude", id="altitude"),
        pytest.param('altitude = "Ignored"', "protection.altitude", id="altitude-case"),
        pytest.param("altitude = 0", "protection.altitude", id="altitude-number"),
        pytest.param('kinds = ["site", "operation"]', "protection.kinds.1", id="kind-operation"),
        pytest.param('kinds = ["hospital"]', "protection.kinds.0", id="kind-unknown"),
        pytest.param("kinds = [1]", "protection.kinds.0", id="kind-number"),
        pytest.param('kinds = "site"', "protection.kinds", id="kinds-not-a-list"),
        pytest.param('colour = "red"', "protection.colour", id="unknown-key"),
    ],
)
def test_a_bad_protection_table_is_refused_naming_the_field(
    cast: dict[str, Actor], table: str, field: str
) -> None:
    before = cast["north"].get("/v1/policy").json()
    answer = put_policy(cast["coordinator"], with_protection(before["toml"], table))
    assert answer.status_code == 400, answer.text  # type: ignore[attr-defined]
    assert [e["field"] for e in problem_of(answer)["errors"]] == [field]
    assert cast["north"].get("/v1/policy").json() == before  # nothing changed


def test_protection_is_not_a_table(cast: dict[str, Actor]) -> None:
    text = cast["north"].get("/v1/policy").json()["toml"]
    head, _, _ = text.partition("[protection]")
    answer = put_policy(cast["coordinator"], 'protection = "ignored"\n' + head)
    assert answer.status_code == 400, answer.text  # type: ignore[attr-defined]
    assert "protection" in [e["field"] for e in problem_of(answer)["errors"]]


def test_a_protection_table_applies_and_shows(cast: dict[str, Actor]) -> None:
    text = cast["north"].get("/v1/policy").json()["toml"]
    table = (
        'kinds = ["site", "site", "restriction"]\naltitude = "separated"\n'
        'disclose_to_owner = "full"'
    )
    answer = put_policy(cast["coordinator"], with_protection(text, table))
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
    assert cast["relief"].get("/v1/policy").json()["policy"]["protection"] == {
        "kinds": ["site", "restriction"],  # once each
        "altitude": "separated",
        "disclose_to_owner": "full",
    }
