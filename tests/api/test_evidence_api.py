"""``GET /v1/declarations/{id}/evidence`` (API.md v1.1): who gets a pack, what is in it, what
a site's owner may not find in it, and the printable report."""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any

from deconflict.record.evidence_check import check_evidence
from evidence_scenario import ARABIC, COMMENT, LATER, build_world, pack_of, public_key
from support import Actor, Service, problem_of


def test_the_owner_and_the_coordinator_get_a_pack_that_verifies(
    service: Service, cast: dict[str, Actor]
) -> None:
    world = build_world(service, cast)
    key = public_key(cast["coordinator"])
    for who, declaration_id in (
        ("coordinator", world.strike),
        ("north", world.strike),
        ("relief", world.hospital),
        ("coordinator", world.hospital),
    ):
        pack = pack_of(cast[who], declaration_id)
        result = check_evidence(pack, key)
        assert result.ok, (who, str(result))
        assert pack["format"] == "deconflict-evidence/1"
        assert pack["declaration"]["id"] == declaration_id
        assert len(pack["versions"]) == 2
        # One head for every entry, and it is the log's.
        assert pack["tree_head"] == cast[who].get("/v1/log/head").json()
        assert pack["public_key"]["public_key"] == key


def test_the_pack_holds_the_answers_and_every_entry_of_them(
    service: Service, cast: dict[str, Actor]
) -> None:
    world = build_world(service, cast)
    pack = pack_of(cast["coordinator"], world.strike)
    [answered] = [n for n in pack["notifications"] if n["id"] == world.notes_to_south[0]["id"]]
    assert (answered["recipient"], answered["reason"]) == (cast["south"].id, "conflict")
    assert (answered["response"], answered["comment"]) == ("cannot_assure", LATER)
    assert [r["response"] for r in answered["responses"]] == ["cannot_assure", "cannot_assure"]
    types = [e["type"] for e in answered["events"]]
    assert types == [
        "notification.created",
        "notification.delivered",
        "notification.acknowledged",
        "notification.responded",
    ]
    acknowledged = answered["events"][2]
    assert acknowledged["openings"]["comment"]["value"] == COMMENT
    assert acknowledged["seal"]["entry"]["response"] == "cannot_assure"
    # The owner's pack: the same answers, without the creation entries.
    owned = pack_of(cast["north"], world.strike)
    [same] = [n for n in owned["notifications"] if n["id"] == answered["id"]]
    assert (same["response"], same["comment"], same["creation_disclosed"]) == (
        "cannot_assure",
        LATER,
        False,
    )
    assert "notification.created" not in [e["type"] for e in same["events"]]


def test_who_may_not_get_a_pack(service: Service, cast: dict[str, Actor]) -> None:
    world = build_world(service, cast)
    # Another operator sees the strike (403); a humanitarian does not (404, as for no id).
    forbidden = cast["south"].get(f"/v1/declarations/{world.strike}/evidence")
    assert (forbidden.status_code, problem_of(forbidden)["code"]) == (403, "forbidden")
    hidden = cast["relief"].get(f"/v1/declarations/{world.strike}/evidence")
    never = cast["relief"].get("/v1/declarations/dcl_00000000000000000000/evidence")
    assert hidden.status_code == never.status_code == 404
    assert hidden.text.replace(world.strike, "dcl_00000000000000000000") == never.text
    observer = cast["observer"].get(f"/v1/declarations/{world.hospital}/evidence")
    assert observer.status_code == 403
    bad = cast["relief"].get(f"/v1/declarations/{world.hospital}/evidence?format=docx")
    assert bad.status_code in (400, 422)
    assert "format" in json.dumps(problem_of(bad))


def test_a_site_owners_pack_names_no_operation(service: Service, cast: dict[str, Actor]) -> None:
    """Under the default ``disclose_to_owner = "redacted"``: the hospital's owner gets its
    alerts as they were delivered to it, and nothing of the operations (ids, versions,
    owners, categories, justifications, the coordinator's copies of the alerts)."""
    world = build_world(service, cast)
    pack = pack_of(cast["relief"], world.hospital)
    text = json.dumps(pack, ensure_ascii=False)
    coordinator_pack = pack_of(cast["coordinator"], world.hospital)
    theirs = [n["id"] for n in coordinator_pack["notifications"]]
    secrets = {world.strike, *world.strike_versions, "strike", "resupply", "Moved east"}
    secrets |= {n for n in theirs if n not in {m["id"] for m in pack["notifications"]}}
    assert not [s for s in secrets if s in text]
    alerts = [n for n in pack["notifications"] if n["reason"] == "protection"]
    assert len(alerts) == len(world.alerts_to_relief) == 3
    for alert in alerts:
        assert alert["recipient"] == cast["relief"].id
        assert alert["declaration"] is None
        assert alert["protection"]["operation"] is None
        assert alert["protection"]["declaration"]["id"] == world.hospital
        shown = json.dumps(alert, ensure_ascii=False)
        assert cast["north"].id not in shown and cast["south"].id not in shown
        created = next(e for e in alert["events"] if e["type"] == "notification.created")
        assert set(created["openings"]) == {"conflicts", "protection"}
    # The operators appear only as recipients of the hospital's own broadcasts.
    for note in pack["notifications"]:
        if cast["north"].id in json.dumps(note):
            assert (note["reason"], note["recipient"]) == ("broadcast", cast["north"].id)


def pdf_text(pdf: bytes) -> bytes:
    """The decoded content streams of a reportlab PDF (ASCII85 and Flate): its text in the
    built-in fonts, searchable (pypdf and pdftotext are not installed here)."""
    found = []
    for match in re.finditer(
        rb"/Filter \[?([^\]>]*)\]?[^>]*>>\s*stream\r?\n(.*?)endstream", pdf, re.S
    ):
        filters, data = match.group(1), match.group(2)
        if b"ASCII85" in filters:
            data = base64.a85decode(data.strip(), adobe=True)
        if b"Flate" in filters:
            data = zlib.decompress(data)
        found.append(data)
    return b"\n".join(found)


def test_the_report_is_a_pdf_with_the_head_and_the_fingerprint(
    service: Service, cast: dict[str, Actor]
) -> None:
    world = build_world(service, cast)
    relief = cast["relief"]
    # The hospital's name is Arabic: the report renders it without an error.
    assert pack_of(relief, world.hospital)["declaration"]["metadata"]["name"] == ARABIC
    answer = relief.get(f"/v1/declarations/{world.hospital}/evidence?format=pdf")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert f"evidence-{world.hospital}.pdf" in answer.headers["content-disposition"]
    assert answer.content.startswith(b"%PDF")
    pack: dict[str, Any] = pack_of(relief, world.hospital)
    text = pdf_text(answer.content)
    for shown in (
        pack["tree_head"]["root"],
        pack["tree_head"]["signature"],
        pack["public_key"]["fingerprint"],
        pack["public_key"]["public_key"],
        "deconflict verify --evidence pack.json --public-key KEY",
    ):
        assert shown.encode() in text, shown


def test_packs_hold_after_a_withdrawal_and_escalations(
    service: Service, cast: dict[str, Actor]
) -> None:
    from deconflict.service.escalation import escalate_overdue

    world = build_world(service, cast)
    gone = cast["north"].delete(
        f"/v1/declarations/{world.strike}?version={world.strike_versions[-1]}"
    )
    assert gone.status_code == 200, gone.text
    service.clock.advance(hours=30)
    assert escalate_overdue(service.deployment) > 0
    key = public_key(cast["coordinator"])
    for who, declaration_id in (
        ("coordinator", world.strike),
        ("north", world.strike),
        ("relief", world.hospital),
    ):
        pack = pack_of(cast[who], declaration_id)
        result = check_evidence(pack, key)
        assert result.ok, (who, str(result))
        reasons = {n["reason"] for n in pack["notifications"]}
        assert "overdue" in reasons, (who, reasons)
    withdrawn = pack_of(cast["coordinator"], world.strike)
    assert [v["change"] for v in withdrawn["versions"]] == ["created", "updated", "withdrawn"]
    assert withdrawn["declaration"]["state"] == "withdrawn"
