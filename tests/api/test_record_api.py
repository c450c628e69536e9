"""The record through the service: receipts, proofs, commitments, openings, verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import text

from deconflict.cli import main
from deconflict.record import client, findings, merkle
from deconflict.record.entries import check_declaration_opening
from deconflict.record.signing import verify_head
from support import Actor, Service, point, problem_of, volume


def public_key(service: Service) -> str:
    answer = service.client.get("/v1/log/public-key").json()
    assert answer["algorithm"] == "Ed25519"
    key: str = answer["public_key"]
    return key


def assert_receipt_holds(service: Service, receipt: dict[str, Any]) -> None:
    head = receipt["tree_head"]
    assert verify_head(public_key(service), head)
    assert receipt["index"] < head["size"]
    proof = service.client.get(
        f"/v1/log/proof/inclusion?index={receipt['index']}&size={head['size']}"
    ).json()
    assert proof["leaf_hash"] == receipt["leaf_hash"]
    assert merkle.verify_inclusion(
        bytes.fromhex(receipt["leaf_hash"]),
        receipt["index"],
        head["size"],
        [bytes.fromhex(h) for h in proof["path"]],
        bytes.fromhex(head["root"]),
    )


def test_every_write_answers_a_receipt_that_proves_inclusion(
    cast: dict[str, Actor], service: Service
) -> None:
    site = cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))], category="hospital")
    assert_receipt_holds(service, site["receipt"])
    declaration = site["declaration"]
    moved = (
        cast["relief"]
        .put(
            f"/v1/declarations/{declaration['id']}",
            {"version": declaration["version"], "volumes": [volume(point(36.31, 33.5))]},
        )
        .json()
    )
    assert_receipt_holds(service, moved["receipt"])
    note = cast["north"].get("/v1/inbox").json()["notifications"][-1]  # created, updated
    ack = cast["north"].post(f"/v1/notifications/{note['id']}/ack", {"comment": "seen"}).json()
    assert_receipt_holds(service, ack["receipt"])
    gone = (
        cast["relief"]
        .delete(f"/v1/declarations/{declaration['id']}?version={moved['declaration']['version']}")
        .json()
    )
    assert_receipt_holds(service, gone["receipt"])
    subscription = (
        cast["water"]
        .post("/v1/subscriptions", {"volumes": [volume(point(36.3, 33.5), buffer_m=5000)]})
        .json()
    )
    assert_receipt_holds(service, subscription["receipt"])


def test_heads_grow_consistently(cast: dict[str, Actor], service: Service) -> None:
    first = service.client.get("/v1/log/head").json()
    cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))])
    second = service.client.get("/v1/log/head").json()
    assert second["size"] > first["size"]
    proof = service.client.get(
        f"/v1/log/proof/consistency?first={first['size']}&second={second['size']}"
    ).json()
    assert merkle.verify_consistency(
        first["size"],
        second["size"],
        bytes.fromhex(first["root"]),
        bytes.fromhex(second["root"]),
        [bytes.fromhex(h) for h in proof["path"]],
    )


def test_out_of_range_log_requests_name_the_field_at_fault(
    cast: dict[str, Actor], service: Service
) -> None:
    """A 400 problem naming the parameter, the log size checked before the other parameter."""
    cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))])
    size = service.client.get("/v1/log/head").json()["size"]
    for url, field in [
        ("/v1/log/entries?start=2&end=1", "end"),
        ("/v1/log/entries?start=-1&end=1", "start"),
        (f"/v1/log/proof/inclusion?index=0&size={size + 1}", "size"),
        (f"/v1/log/proof/inclusion?index={size + 5}&size={size + 1}", "size"),
        (f"/v1/log/proof/inclusion?index={size}&size={size}", "index"),
        ("/v1/log/proof/inclusion?index=-1&size=1", "index"),
        ("/v1/log/proof/inclusion?index=0&size=0", "size"),
        (f"/v1/log/proof/consistency?first=1&second={size + 1}", "second"),
        (f"/v1/log/proof/consistency?first={size + 2}&second={size + 1}", "second"),
        (f"/v1/log/proof/consistency?first={size}&second={size - 1}", "first"),
        ("/v1/log/proof/consistency?first=0&second=1", "first"),
    ]:
        answer = service.client.get(url)
        assert answer.status_code == 400, url
        problem = problem_of(answer)
        assert problem["code"] == "invalid_request", url
        assert [error["field"] for error in problem["errors"]] == [field], url


def test_the_log_holds_no_coordinates_metadata_or_comments(
    cast: dict[str, Actor], service: Service
) -> None:
    cast["relief"].declare_ok(
        "site",
        [volume(point(36.123457, 33.987654))],
        category="field hospital",
        metadata={"contact": "dr.amal@example.org"},
    )
    [note] = cast["north"].get("/v1/inbox").json()["notifications"]
    cast["north"].post(f"/v1/notifications/{note['id']}/ack", {"comment": "patrol rerouted"})
    size = service.client.get("/v1/log/head").json()["size"]
    leaves = [
        e["leaf"]
        for e in service.client.get(f"/v1/log/entries?start=0&end={size}").json()["entries"]
    ]
    assert len(leaves) == size
    everything = "\n".join(leaves)
    for secret in ("36.123457", "33.987654", "dr.amal", "field hospital", "patrol rerouted"):
        assert secret not in everything
    for leaf in leaves:
        assert (
            json.dumps(json.loads(leaf), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            == leaf
        )


def test_the_owner_proves_what_it_declared(
    cast: dict[str, Actor], service: Service, tmp_path: Path
) -> None:
    made = cast["relief"].declare_ok(
        "site", [volume(point(36.3, 33.5))], category="hospital", metadata={"beds": 120}
    )["declaration"]
    url = f"/v1/declarations/{made['id']}/opening"
    opening = cast["relief"].get(url)
    assert opening.status_code == 200, opening.text
    document = opening.json()
    assert document["values"]["metadata"] == {"beds": 120}
    assert check_declaration_opening(document["leaf"], document) == []
    assert cast["coordinator"].get(url).status_code == 200
    assert problem_of(cast["north"].get(url))["code"] == "forbidden"

    # The leaf in the opening is the one in the public, signed log.
    leaf = client.fetch_included_leaf(
        "http://testserver", document["log_index"], client=service.client
    )
    assert leaf == document["leaf"]

    good = tmp_path / "opening.json"
    good.write_text(json.dumps(document))
    proven = CliRunner().invoke(main, ["check-opening", str(good)])
    assert proven.exit_code == 0, proven.output
    assert "proven" in proven.stdout

    document["values"]["metadata"] = {"beds": 12}
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    refused = CliRunner().invoke(main, ["check-opening", str(forged)])
    assert refused.exit_code == 1
    assert "metadata" in refused.stderr


def test_verify_database_passes_then_names_a_tampered_row(
    cast: dict[str, Actor], service: Service
) -> None:
    made = cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))])["declaration"]
    cast["north"].get("/v1/inbox")
    ok = CliRunner().invoke(main, ["verify", "--db", service.db_url])
    assert ok.exit_code == 0, ok.output
    with service.deployment.db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE declaration_versions SET volumes = replace(volumes, '36.3', '36.4') "
                "WHERE declaration_id = :id"
            ),
            {"id": made["id"]},
        )
    tampered = CliRunner().invoke(main, ["verify", "--db", service.db_url])
    assert tampered.exit_code == 1
    assert made["id"] in tampered.output


def test_a_party_verifies_the_service_with_its_saved_heads_and_receipts(
    cast: dict[str, Actor], service: Service, tmp_path: Path
) -> None:
    heads = tmp_path / "heads.jsonl"
    receipts = tmp_path / "receipts.jsonl"
    answer = cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))])
    receipts.write_text(json.dumps(answer["receipt"]) + "\n")
    first = client.verify_remote("http://testserver", heads, receipts, client=service.client)
    assert first.ok, str(first)
    cast["relief"].declare_ok("site", [volume(point(37.3, 33.5))])
    second = client.verify_remote(
        "http://testserver",
        heads,
        receipts,
        client=service.client,
        public_key_b64=public_key(service),
    )
    assert second.ok, str(second)
    assert len(heads.read_text().splitlines()) == 2


def test_a_party_verifies_the_openings_it_holds(
    cast: dict[str, Actor], service: Service, tmp_path: Path
) -> None:
    """`verify --url` checks openings in the receipts file: each opens its leaves, and each leaf
    is the log's, in the current signed tree."""
    site = cast["relief"].declare_ok("site", [volume(point(36.3, 33.5))], category="hospital")
    [note] = cast["north"].get("/v1/inbox").json()["notifications"]
    cast["north"].post(f"/v1/notifications/{note['id']}/ack", {"comment": "rerouted"})
    declared = cast["relief"].get(f"/v1/declarations/{site['declaration']['id']}/opening").json()
    told = cast["north"].get(f"/v1/notifications/{note['id']}/opening").json()
    assert json.loads(declared["leaf"])["type"] == "sealed"
    assert {json.loads(e["leaf"])["type"] for e in told["entries"]} == {"sealed"}
    heads, receipts = tmp_path / "heads.jsonl", tmp_path / "held.jsonl"

    def verify(*lines: dict[str, Any]) -> findings.AuditResult:
        receipts.write_text("".join(json.dumps(line) + "\n" for line in lines))
        return client.verify_remote("http://testserver", heads, receipts, client=service.client)

    held = verify(site, declared, told)
    assert held.ok, str(held)
    assert (held.receipts_checked, held.openings_checked) == (1, 2)
    assert "2 openings" in held.describe()

    forged = {**declared, "values": {**declared["values"], "category": "school"}}
    refused = verify(forged)
    assert refused.problem is not None and "category" in refused.problem.detail
    # A leaf that opens, but is not the log's at that index.
    elsewhere = {**declared, "log_index": declared["log_index"] + 1}
    refused = verify(elsewhere)
    assert refused.problem is not None and "not" in refused.problem.detail
    comment = {**told, "comment": {**told["comment"], "value": "never received"}}
    refused = verify(comment)
    assert refused.problem is not None and "comment" in refused.problem.detail
