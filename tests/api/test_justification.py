"""An operation over a protected declaration needs a written justification (API.md v1.1):
asked for after the key, refused when malformed, stored with the version, committed in the
record, shown to the operation's owner and the coordinator only."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from deconflict.cli import main
from deconflict.record.entries import check_declaration_opening
from support import Actor, Service, point, problem_of, square, volume

HOSPITAL = point(36.30, 33.51)
WHY = "The only bridge out of the valley; the clinic's staff are told to shelter."


def strike(**kw: object) -> list[dict[str, object]]:
    return [volume(square(36.30, 33.51, 0.02), lower_m=6000, upper_m=12000, **kw)]  # type: ignore[arg-type]


@pytest.fixture
def hospital(cast: dict[str, Actor]) -> dict[str, object]:
    site = cast["relief"].declare_ok(
        "site", [volume(HOSPITAL, buffer_m=50, upper_m=50)], category="hospital"
    )
    declaration: dict[str, object] = site["declaration"]
    return declaration


def test_the_key_first_then_the_justification(
    cast: dict[str, Actor], hospital: dict[str, object]
) -> None:
    north = cast["north"]
    first = north.declare("operation", strike(), category="strike")
    assert problem_of(first)["code"] == "missing_awareness"
    second = north.declare("operation", strike(), category="strike", key=[hospital["version"]])
    problem = problem_of(second)
    assert second.status_code == 409
    assert problem["code"] == "justification_required"
    ref = {k: hospital[k] for k in ("id", "kind", "owner", "version")}
    assert problem["protected"] == [ref]
    assert [c["declaration"] for c in problem["conflicts"]] == [ref]
    assert problem["errors"][0]["field"] == "justification"
    made = north.declare(
        "operation", strike(), category="strike", key=[hospital["version"]], justification=WHY
    )
    assert made.status_code == 201, made.text
    assert made.json()["declaration"]["justification"] == WHY


def test_no_justification_needed_clear_of_protected_sites(cast: dict[str, Actor]) -> None:
    made = cast["north"].declare("operation", strike(), category="strike")
    assert made.status_code == 201, made.text
    assert made.json()["declaration"]["justification"] is None


@pytest.mark.parametrize(
    "bad", ["", "   \n\t ", "x" * 2001, 42, ["why"], {"text": "why"}, True], ids=repr
)
def test_a_malformed_justification_is_400_naming_it(
    cast: dict[str, Actor], hospital: dict[str, object], bad: object
) -> None:
    answer = cast["north"].declare(
        "operation", strike(), key=[hospital["version"]], justification=bad
    )
    assert answer.status_code == 400, answer.text
    assert [e["field"] for e in problem_of(answer)["errors"]] == ["justification"]


def test_the_longest_justification_is_taken_as_sent(
    cast: dict[str, Actor], hospital: dict[str, object]
) -> None:
    text = " " + "ж" * 1998 + " "
    made = cast["north"].declare(
        "operation", strike(), key=[hospital["version"]], justification=text
    )
    assert made.status_code == 201, made.text
    assert made.json()["declaration"]["justification"] == text


def test_only_operations_carry_one(cast: dict[str, Actor]) -> None:
    answer = cast["relief"].declare("site", [volume(HOSPITAL)], justification=WHY)
    assert answer.status_code == 400
    assert problem_of(answer)["errors"][0]["field"] == "justification"


def test_shown_to_the_owner_and_the_coordinator_only(
    cast: dict[str, Actor], hospital: dict[str, object], service: Service
) -> None:
    made = cast["north"].declare(
        "operation", strike(), key=[hospital["version"]], justification=WHY
    )
    operation = made.json()["declaration"]
    url = f"/v1/declarations/{operation['id']}"
    for who, shown in (("north", WHY), ("coordinator", WHY), ("south", None)):
        assert cast[who].get(url).json()["declaration"]["justification"] == shown, who
        listed = cast[who].get("/v1/declarations?kind=operation").json()["declarations"]
        assert [d["justification"] for d in listed] == [shown], who
    assert cast["relief"].get(url).status_code == 404
    assert WHY not in cast["south"].get(url).text


def test_every_version_needs_its_own_and_the_record_commits_it(
    cast: dict[str, Actor], hospital: dict[str, object], service: Service
) -> None:
    north = cast["north"]
    made = north.declare(
        "operation", strike(), key=[hospital["version"]], justification=WHY
    ).json()["declaration"]
    url = f"/v1/declarations/{made['id']}"
    moved = {"version": made["version"], "volumes": strike(start_h=1), "key": [hospital["version"]]}
    assert problem_of(north.put(url, moved))["code"] == "justification_required"
    changed = north.put(url, {**moved, "justification": "moved an hour later"})
    assert changed.status_code == 200, changed.text
    version = changed.json()["declaration"]["version"]
    assert changed.json()["declaration"]["justification"] == "moved an hour later"

    opening = north.get(f"{url}/opening?version={made['version']}").json()
    assert opening["values"]["justification"] == WHY
    assert check_declaration_opening(opening["leaf"], opening) == []
    committed = opening["seal"]["entry"]["declaration"]["justification"]
    assert len(committed) == 64 and WHY not in opening["leaf"]
    forged = {**opening, "values": {**opening["values"], "justification": "nothing to see"}}
    assert check_declaration_opening(opening["leaf"], forged) == ["justification"]

    gone = north.delete(f"{url}?version={version}")
    assert gone.status_code == 200, gone.text
    # A site's entry has no justification field at all (old leaves rebuild byte for byte).
    site = cast["relief"].get(f"/v1/declarations/{hospital['id']}/opening").json()
    assert "justification" not in site["seal"]["entry"]["declaration"]
    assert "justification" not in site["values"]
    assert check_declaration_opening(site["leaf"], site) == []
    verified = CliRunner().invoke(main, ["verify", "--db", service.db_url])
    assert verified.exit_code == 0, verified.output
    assert json.loads(changed.text)["receipt"]["index"] >= 0
