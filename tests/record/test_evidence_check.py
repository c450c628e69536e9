"""Checking an evidence pack offline (``record.evidence_check``): a pack as the service
answers it holds; a copy with one byte or field changed anywhere that matters fails, naming
the part. And an RFC 6962 root recomputed here, with a few lines of our own, from a leaf and
its proof: the pack is checkable by anyone's verifier, not only by ours."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deconflict.record.evidence_check import check_evidence
from evidence_scenario import COMMENT, LATER, build_world, pack_of, public_key
from support import FakeClock, make_service, usual_cast

Pack = dict[str, Any]


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The coordinator's pack of the strike, and the owners' packs, with the log's key."""
    for service in make_service(tmp_path_factory.mktemp("evidence"), FakeClock()):
        cast = usual_cast(service)
        world = build_world(service, cast)
        yield {
            "key": public_key(cast["coordinator"]),
            "strike": pack_of(cast["coordinator"], world.strike),
            "strike_owner": pack_of(cast["north"], world.strike),
            "hospital_owner": pack_of(cast["relief"], world.hospital),
            "hospital": pack_of(cast["coordinator"], world.hospital),
        }


@pytest.mark.parametrize("name", ["strike", "strike_owner", "hospital_owner", "hospital"])
def test_a_pack_as_answered_holds(packs: dict[str, Any], name: str) -> None:
    result = check_evidence(packs[name], packs["key"])
    assert result.ok, str(result)
    assert result.versions == 2
    assert result.notifications > 0


def test_a_pack_under_another_key_fails(packs: dict[str, Any]) -> None:
    other = base64.b64encode(bytes(32)).decode()
    problems = check_evidence(packs["strike"], other).problems
    assert "public_key.public_key is not the public key given" in problems
    assert any(p.startswith("tree_head: the signature does not verify") for p in problems)


# -- tamperings: one change each, and the part its failure must name -----------------------


def note_with_answers(pack: Pack) -> int:
    """The notification South answered twice (cannot_assure, with a comment)."""
    [number] = [i for i, n in enumerate(pack["notifications"]) if n["comment"] == LATER]
    return number


def first_alert(pack: Pack) -> int:
    return next(i for i, n in enumerate(pack["notifications"]) if n["protection"])


def event_of(pack: Pack, note: int, kind: str) -> int:
    events = pack["notifications"][note]["events"]
    return next(i for i, e in enumerate(events) if e["type"] == kind)


def flip(text: str, position: int = -1) -> str:
    """``text`` with one character changed (a hex digit stays a hex digit)."""
    chars = list(text)
    chars[position] = "1" if chars[position] != "1" else "2"
    return "".join(chars)


def set_in(pack: Pack, path: list[Any], change: Callable[[Any], Any]) -> None:
    node: Any = pack
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = change(node[path[-1]])


def _note(n: int) -> str:
    return f"notifications[{n}]"


TAMPERINGS: list[tuple[str, Callable[[Pack], list[Any]], Callable[[Any], Any], str]] = [
    # (id, the path to change, how, the part the failure names)
    (
        "a leaf character",
        lambda p: ["versions", 1, "leaf"],
        lambda v: v.replace('"at":"2', '"at":"3'),
        "versions[1]: inclusion proof does not reach the root",
    ),
    (
        "a leaf hash",
        lambda p: ["versions", 0, "leaf_hash"],
        flip,
        "versions[0].leaf_hash is not the hash of its leaf",
    ),
    (
        "a proof hash",
        lambda p: ["versions", 0, "inclusion_proof", 0],
        flip,
        "versions[0]: inclusion proof does not reach the root",
    ),
    (
        "a log index",
        lambda p: ["versions", 1, "log_index"],
        lambda v: v + 1,
        "versions[1]: inclusion proof does not reach the root",
    ),
    (
        "the signature",
        lambda p: ["tree_head", "signature"],
        lambda v: flip(v, 3),
        "tree_head: the signature does not verify",
    ),
    ("the root", lambda p: ["tree_head", "root"], flip, "tree_head: the signature does not verify"),
    (
        "the size",
        lambda p: ["tree_head", "size"],
        lambda v: v + 1,
        "tree_head: the signature does not verify",
    ),
    (
        "the fingerprint",
        lambda p: ["public_key", "fingerprint"],
        flip,
        "public_key.fingerprint is not the SHA-256 of the public key",
    ),
    (
        "an opening salt",
        lambda p: ["versions", 1, "opening", "salts", "volumes"],
        flip,
        "versions[1].opening.volumes does not match the commitment in its leaf",
    ),
    (
        "an opened coordinate",
        lambda p: ["versions", 0, "opening", "values", "volumes", 0, "geometry", "coordinates", 0],
        lambda v: v + 1e-6,
        "versions[0].opening.volumes does not match the commitment in its leaf",
    ),
    (
        "an opened category",
        lambda p: ["versions", 0, "opening", "values", "category"],
        lambda v: "medical",
        "versions[0].opening.category does not match the commitment in its leaf",
    ),
    (
        "the justification",
        lambda p: ["versions", 1, "opening", "values", "justification"],
        lambda v: v + ".",
        "versions[1].opening.justification does not match the commitment in its leaf",
    ),
    (
        "a seal's salt",
        lambda p: ["versions", 0, "seal", "salt"],
        flip,
        "versions[0].seal does not open its leaf",
    ),
    (
        "a sealed entry's actor",
        lambda p: ["versions", 0, "seal", "entry", "actor"],
        flip,
        "versions[0].seal does not open its leaf",
    ),
    (
        "a version's time",
        lambda p: ["versions", 1, "at"],
        flip,
        "versions[1].at is not what its leaf says",
    ),
    (
        "a version's change",
        lambda p: ["versions", 1, "change"],
        lambda v: "withdrawn",
        "versions[1].change is not what its leaf says",
    ),
    (
        "the shown volumes",
        lambda p: ["declaration", "volumes", 0, "buffer_m"],
        lambda v: v + 1,
        "declaration.volumes is not the latest version's opened value",
    ),
    (
        "the shown owner",
        lambda p: ["declaration", "owner"],
        flip,
        "declaration.owner is not what the leaf of versions[0] says",
    ),
    (
        "the response",
        lambda p: ["notifications", note_with_answers(p), "response"],
        lambda v: "assured",
        "{n}.response is not the latest response in its entries",
    ),
    (
        "the comment",
        lambda p: ["notifications", note_with_answers(p), "comment"],
        lambda v: COMMENT,
        "{n}.comment is not the latest comment in its entries",
    ),
    (
        "a listed response",
        lambda p: ["notifications", note_with_answers(p), "responses", 0, "response"],
        lambda v: "denied",
        "{n}.responses (number 1) is not what its entry says",
    ),
    (
        "a delivered_at",
        lambda p: ["notifications", note_with_answers(p), "delivered_at"],
        flip,
        "{n}.delivered_at is not the time of its delivery entry",
    ),
    (
        "an acknowledged_at",
        lambda p: ["notifications", note_with_answers(p), "acknowledged_at"],
        flip,
        "{n}.acknowledged_at is not the time of its acknowledgment entry",
    ),
    (
        "a comment's opening",
        lambda p: [
            "notifications",
            note_with_answers(p),
            "events",
            event_of(p, note_with_answers(p), "notification.acknowledged"),
            "openings",
            "comment",
            "value",
        ],
        lambda v: v + "!",
        "{n}.events[{e}].openings.comment does not match the commitment in its leaf",
    ),
    (
        "an event's proof",
        lambda p: [
            "notifications",
            note_with_answers(p),
            "events",
            event_of(p, note_with_answers(p), "notification.delivered"),
            "inclusion_proof",
            -1,
        ],
        flip,
        "{n}.events[{e}]: inclusion proof does not reach the root",
    ),
    (
        "an event's leaf",
        lambda p: [
            "notifications",
            note_with_answers(p),
            "events",
            event_of(p, note_with_answers(p), "notification.responded"),
            "leaf",
        ],
        lambda v: flip(v, -3),
        "{n}.events[{e}]: inclusion proof does not reach the root",
    ),
    (
        "the recipient",
        lambda p: ["notifications", note_with_answers(p), "recipient"],
        flip,
        "{n}.recipient is not what its creation entry says",
    ),
    (
        "the reason",
        lambda p: ["notifications", note_with_answers(p), "reason"],
        lambda v: "broadcast",
        "{n}.reason is not what its creation entry says",
    ),
    (
        "an alert's distance",
        lambda p: ["notifications", first_alert(p), "protection", "min_distance_m"],
        lambda v: v + 1000,
        "{n}.protection is not the alert its creation entry commits to",
    ),
]


def _render(expected: str, path: list[Any]) -> str:
    note = path[1] if path[0] == "notifications" else None
    event = path[3] if len(path) > 3 and path[2] == "events" else None
    return expected.format(n=_note(note) if note is not None else "", e=event)


@pytest.mark.parametrize(
    ("path_of", "change", "expected"), [t[1:] for t in TAMPERINGS], ids=[t[0] for t in TAMPERINGS]
)
def test_one_change_fails_naming_the_part(
    packs: dict[str, Any],
    path_of: Callable[[Pack], list[Any]],
    change: Callable[[Any], Any],
    expected: str,
) -> None:
    pack = copy.deepcopy(packs["strike"])
    path = path_of(pack)
    set_in(pack, path, change)
    result = check_evidence(pack, packs["key"])
    assert not result.ok
    named = _render(expected, path)
    assert any(problem.startswith(named) for problem in result.problems), result.problems


def test_a_removed_version_or_event_fails(packs: dict[str, Any]) -> None:
    pack = copy.deepcopy(packs["strike"])
    del pack["versions"][0]
    assert "versions[0]: its leaf's previous_version is not the version before it" in (
        check_evidence(pack, packs["key"]).problems
    )
    pack = copy.deepcopy(packs["strike"])
    n = note_with_answers(pack)
    pack["notifications"][n]["events"] = [
        e for e in pack["notifications"][n]["events"] if e["type"] != "notification.delivered"
    ]
    assert f"notifications[{n}]: its delivered entry is missing or repeated" in (
        check_evidence(pack, packs["key"]).problems
    )


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from _leaves(item, (*path, number))
    else:
        yield path, value


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if value is None or value == "":
        return "x"
    return flip(value)


# What a change may leave unproven in the coordinator's pack: when it was made, and the salt
# beside a commitment that is null (a site's restricts: nothing to open).
UNPROVEN = {("generated_at",), ("versions", "#", "opening", "salts", "restricts")}


def test_every_value_of_the_coordinators_pack_is_proven(packs: dict[str, Any]) -> None:
    """Each scalar of the pack changed in turn: the check fails for all but ``UNPROVEN``."""
    pack = packs["strike"]
    missed = set()
    for path, _value in _leaves(pack):
        changed = copy.deepcopy(pack)
        set_in(changed, list(path), _changed)
        if check_evidence(changed, packs["key"]).ok:
            missed.add(tuple("#" if isinstance(k, int) else k for k in path))
    assert missed == UNPROVEN


# -- an outside verifier's view: RFC 6962 in a few lines of our own -------------------------


def rfc6962_root(leaf: str, index: int, size: int, path: list[str]) -> bytes:
    """The root that a leaf and its audit path imply (RFC 9162 §2.1.3.2), written here
    without deconflict's code, as an inquiry's own verifier would."""
    digest = hashlib.sha256(b"\x00" + leaf.encode("utf-8")).digest()
    fn, sn = index, size - 1
    for sibling_hex in path:
        sibling = bytes.fromhex(sibling_hex)
        if fn % 2 == 1 or fn == sn:
            digest = hashlib.sha256(b"\x01" + sibling + digest).digest()
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn // 2, sn // 2
        else:
            digest = hashlib.sha256(b"\x01" + digest + sibling).digest()
        fn, sn = fn // 2, sn // 2
    assert sn == 0
    return digest


def test_an_outside_verifier_reaches_the_signed_root(packs: dict[str, Any]) -> None:
    pack = packs["strike"]
    head = pack["tree_head"]
    message = json.dumps(
        {"root": head["root"], "size": head["size"], "timestamp": head["timestamp"]},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    raw_key = base64.b64decode(packs["key"])
    Ed25519PublicKey.from_public_bytes(raw_key).verify(base64.b64decode(head["signature"]), message)
    assert pack["public_key"]["fingerprint"] == hashlib.sha256(raw_key).hexdigest()
    parts = [*pack["versions"], *(e for n in pack["notifications"] for e in n["events"])]
    for part in parts:
        root = rfc6962_root(part["leaf"], part["log_index"], head["size"], part["inclusion_proof"])
        assert root.hex() == head["root"]
    tampered = parts[0]["leaf"].replace("sealed", "Sealed")
    assert (
        rfc6962_root(
            tampered, parts[0]["log_index"], head["size"], parts[0]["inclusion_proof"]
        ).hex()
        != head["root"]
    )


def test_the_hand_method_opens_a_version(packs: dict[str, Any], tmp_path: Path) -> None:
    """docs/record.md's hand check: the seal and a commitment recomputed with hashlib alone
    (the site's category is a plain string, whose canonical JSON json.dumps writes)."""
    version = packs["hospital_owner"]["versions"][0]
    seal, opening = version["seal"], version["opening"]

    def commitment(value: Any, salt: str) -> str:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(bytes.fromhex(salt) + text.encode()).hexdigest()

    assert commitment(seal["entry"], seal["salt"]) == json.loads(version["leaf"])["commitment"]
    declared = seal["entry"]["declaration"]
    category = opening["values"]["category"]
    assert commitment(category, opening["salts"]["category"]) == declared["category"]


def test_openssl_checks_the_head_and_a_leaf_hash(packs: dict[str, Any], tmp_path: Path) -> None:
    """docs/record.md's commands: OpenSSL alone verifies the head's signature and a leaf hash."""
    import subprocess

    pack = packs["strike"]
    head = pack["tree_head"]
    der = bytes.fromhex("302a300506032b6570032100") + base64.b64decode(packs["key"])
    (tmp_path / "key.der").write_bytes(der)
    message = f'{{"root":"{head["root"]}","size":{head["size"]},"timestamp":"{head["timestamp"]}"}}'
    (tmp_path / "head.msg").write_text(message, "utf-8")
    (tmp_path / "head.sig").write_bytes(base64.b64decode(head["signature"]))

    def openssl(*args: str, given: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["openssl", *args], cwd=tmp_path, capture_output=True, input=given)

    converted = openssl("pkey", "-pubin", "-inform", "DER", "-in", "key.der", "-out", "key.pem")
    assert converted.returncode == 0, converted.stderr
    verify = ("pkeyutl", "-verify", "-pubin", "-inkey", "key.pem", "-rawin", "-in", "head.msg")
    assert openssl(*verify, "-sigfile", "head.sig").returncode == 0
    (tmp_path / "head.sig").write_bytes(base64.b64decode(flip(head["signature"], 3)))
    assert openssl(*verify, "-sigfile", "head.sig").returncode != 0
    leaf = pack["versions"][0]["leaf"].encode("utf-8")
    digest = openssl("dgst", "-sha256", "-r", given=b"\x00" + leaf).stdout.split()[0].decode()
    assert digest == pack["versions"][0]["leaf_hash"]


def test_a_repeated_notification_fails(packs: dict[str, Any]) -> None:
    pack = copy.deepcopy(packs["strike"])
    pack["notifications"].append(pack["notifications"][0])
    last = len(pack["notifications"]) - 1
    assert f"notifications[{last}] is listed twice" in check_evidence(pack, packs["key"]).problems
