"""Checking an evidence pack offline (``deconflict verify --evidence FILE --public-key KEY``).

Pure functions over the pack's JSON and the log's public key: no service, no database, no
storage import. What holds when ``check_evidence`` finds no problem:

1. the tree head is signed by the key given (and the pack names that key, fingerprint too);
2. every entry (each version's, each notification event's) is canonical JSON, hashes to
   its ``leaf_hash``, and its RFC 6962 inclusion proof leads from that hash to the head's
   root: it is in the signed log, at its index;
3. every sealed leaf is opened by the seal's opening beside it (``{"entry", "salt"}``), and
   the entry is what the pack says: each version's change, time, actor, state and version
   chain, the declaration's id, kind and owner; each opening's values open the commitments
   of its version's entry; the declaration as shown is its latest version;
4. each notification's events are its own (id, recipient), their times are its creation,
   delivery, acknowledgment and response times, their responses and comments (opened) its
   responses and comments, its current response the latest, and its creation entry (when
   the pack discloses it) names this declaration, its reason, change and alert.

A problem names the part of the pack that fails, e.g. ``versions[1].opening.volumes does not
match the commitment in its leaf`` or ``notifications[0].events[2]: inclusion proof does not
reach the root``. ``record.evidence`` builds packs; docs/record.md ("Checking an evidence pack
by hand") does the same checks with standard tools.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deconflict.geo.coords import readback, representative_position
from deconflict.record import merkle
from deconflict.record.canonical import canonical_json
from deconflict.record.commitments import check_opening
from deconflict.record.signing import verify_head

FORMAT = "deconflict-evidence/1"

# The commitments of a declaration entry (``entries.DECLARATION_FIELDS`` and the operation's
# justification), named here so that this module needs nothing that reads a database.
COMMITTED_FIELDS = ("volumes", "metadata", "category", "restricts", "justification")
SEALED = "sealed"


def fingerprint(public_key_b64: str) -> str:
    """SHA-256 of the raw 32-byte public key, in hex: what an inquiry compares by eye."""
    return hashlib.sha256(base64.b64decode(public_key_b64, validate=True)).hexdigest()


@dataclass
class EvidenceResult:
    """What the check found: every problem (empty: the pack holds), and what it counted."""

    problems: list[str] = field(default_factory=list)
    versions: int = 0
    notifications: int = 0
    entries: int = 0
    creations_withheld: int = 0
    declaration_id: Any = None
    head: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.problems:
            return "\n".join(
                [f"the evidence pack does not hold ({len(self.problems)} problems):"]
                + [f"  {problem}" for problem in self.problems]
            )
        withheld = (
            f"; {self.creations_withheld} notification creation entries are not in this "
            "pack (not disclosed to its holder)"
            if self.creations_withheld
            else ""
        )
        return (
            f"evidence pack of declaration {self.declaration_id} holds: {self.versions} "
            f"versions, {self.notifications} notifications, {self.entries} entries, each in "
            f"the log of size {self.head.get('size')} with root {self.head.get('root')} "
            f"signed at {self.head.get('timestamp')}{withheld}"
        )


def check_evidence(pack: Any, public_key_b64: str) -> EvidenceResult:
    """Check ``pack`` (parsed JSON) against the log's public key (standard base64)."""
    checker = _Checker(public_key_b64)
    checker.run(pack)
    return checker.result


def unseal(leaf: Mapping[str, Any], opening: Any) -> dict[str, Any] | None:
    """The entry behind a leaf: the leaf itself in clear, the opened entry when ``opening``
    opens its seal, else None. (``entries.unseal`` does the same; that module reads the
    database, which an offline check must not need.)"""
    if leaf.get("type") != SEALED:
        return dict(leaf)
    if not isinstance(opening, Mapping):
        return None
    entry, salt, commitment = opening.get("entry"), opening.get("salt"), leaf.get("commitment")
    if (
        not isinstance(entry, dict)
        or not isinstance(salt, str)
        or not isinstance(commitment, str)
        or entry.get("at") != leaf.get("at")
        or not check_opening(commitment, entry, salt)
    ):
        return None
    return entry


def opens(commitment: Any, value: Any, salt: Any) -> bool:
    """Whether ``(value, salt)`` opens ``commitment``; a null commitment opens only null."""
    if commitment is None:
        return value is None
    return (
        isinstance(commitment, str)
        and isinstance(salt, str)
        and check_opening(commitment, value, salt)
    )


class _Checker:
    def __init__(self, public_key_b64: str) -> None:
        self.key = public_key_b64
        self.result = EvidenceResult()
        self.root = b""
        self.size = 0
        self._last: Mapping[str, Any] | None = None  # the latest version's declaration entry

    def fail(self, message: str) -> None:
        self.result.problems.append(message)

    def run(self, pack: Any) -> None:
        if not isinstance(pack, dict):
            self.fail("the pack is not a JSON object")
            return
        if pack.get("format") != FORMAT:
            self.fail(f"format is not {FORMAT!r}")
        self._check_key(pack.get("public_key"))
        self._check_head(pack.get("tree_head"))
        declaration = pack.get("declaration")
        if not isinstance(declaration, dict):
            self.fail("declaration is not an object")
            declaration = {}
        self.result.declaration_id = declaration.get("id")
        versions = _list(pack.get("versions"))
        if versions is None or not versions:
            self.fail("versions: the pack holds no version")
            versions = []
        latest = None
        for number, version in enumerate(versions):
            latest = self._check_version(f"versions[{number}]", version, declaration, latest)
        if versions:
            self._check_current(declaration, versions[0], versions[-1], latest_entry=self._last)
        self._check_position(declaration)
        self.result.versions = len(versions)
        notes = _list(pack.get("notifications"))
        if notes is None:
            self.fail("notifications is not a list")
            notes = []
        listed: set[Any] = set()
        for number, note in enumerate(notes):
            self._check_notification(f"notifications[{number}]", note, declaration)
            note_id = _get(note, "id")
            if note_id in listed:
                self.fail(f"notifications[{number}] is listed twice")
            listed.add(note_id)
        self.result.notifications = len(notes)

    def _check_position(self, declaration: dict[str, Any]) -> None:
        """The read-back shown beside a declaration is no entry's: it must be what its proven
        volumes give, or a tampered pack could show a hospital somewhere else."""
        if "position" not in declaration:
            return
        try:
            volumes = declaration.get("volumes")
            expected = (
                readback(*representative_position(volumes[0]["geometry"])) if volumes else None
            )
        except Exception:  # a hostile pack's volumes: any failure is a finding, not a crash
            expected = None
        if declaration["position"] != expected:
            self.fail("declaration.position is not the read-back of its volumes")

    # -- the key and the head ---------------------------------------------------------------

    def _check_key(self, given: Any) -> None:
        try:
            expected = fingerprint(self.key)
        except (binascii.Error, ValueError):
            self.fail("the public key given is not standard base64")
            return
        if not isinstance(given, dict) or given.get("algorithm") != "Ed25519":
            self.fail("public_key.algorithm is not Ed25519")
        elif given.get("public_key") != self.key:
            self.fail("public_key.public_key is not the public key given")
        elif given.get("fingerprint") != expected:
            self.fail("public_key.fingerprint is not the SHA-256 of the public key")

    def _check_head(self, head: Any) -> None:
        if not isinstance(head, dict):
            self.fail("tree_head is not an object")
            return
        self.result.head = head
        if not verify_head(self.key, head):
            self.fail(
                "tree_head: the signature does not verify with the public key "
                "(its root, size, timestamp or signature was changed)"
            )
        try:
            self.root = bytes.fromhex(str(head.get("root")))
            self.size = int(head["size"])
        except (KeyError, TypeError, ValueError):
            self.fail("tree_head: root or size is malformed")

    # -- one entry --------------------------------------------------------------------------

    def _entry(self, where: str, part: Any) -> dict[str, Any] | None:
        """The entry of a pack part holding a leaf: checked in the signed log, unsealed."""
        if not isinstance(part, dict):
            self.fail(f"{where} is not an object")
            return None
        leaf, index = part.get("leaf"), part.get("log_index")
        if not isinstance(leaf, str):
            self.fail(f"{where}.leaf is not a string")
            return None
        self.result.entries += 1
        digest = merkle.leaf_hash(leaf.encode("utf-8"))
        if part.get("leaf_hash") != digest.hex():
            self.fail(f"{where}.leaf_hash is not the hash of its leaf")
        path = _hashes(part.get("inclusion_proof"))
        if not isinstance(index, int) or isinstance(index, bool) or path is None:
            self.fail(f"{where}: log_index or inclusion_proof is malformed")
        elif not merkle.verify_inclusion(digest, index, self.size, path, self.root):
            self.fail(f"{where}: inclusion proof does not reach the root")
        try:
            parsed = json.loads(leaf)
            canonical = canonical_json(parsed) == leaf
        except (TypeError, ValueError):
            parsed, canonical = None, False
        if not isinstance(parsed, dict) or not canonical:
            self.fail(f"{where}.leaf is not the canonical JSON of an object")
            return None
        entry = unseal(parsed, part.get("seal"))
        if entry is None:
            self.fail(f"{where}.seal does not open its leaf")
        return entry

    # -- versions -----------------------------------------------------------------------------

    def _check_version(
        self, where: str, version: Any, declaration: Mapping[str, Any], previous: Any
    ) -> Any:
        """Check one version; returns its version string for the next one's chain."""
        entry = self._entry(where, version)
        if entry is None or not isinstance(version, dict):
            return _get(version, "version")
        about = entry.get("declaration")
        if not isinstance(about, dict):
            self.fail(f"{where}: its leaf is not a declaration entry")
            return version.get("version")
        self._last = about
        said = {
            "change": entry.get("type") == f"declaration.{version.get('change')}",
            "at": entry.get("at") == version.get("at"),
            "actor": entry.get("actor") == version.get("actor"),
            "version": about.get("version") == version.get("version"),
            "state": about.get("state") == version.get("state"),
        }
        for name, holds in said.items():
            if not holds:
                self.fail(f"{where}.{name} is not what its leaf says")
        for name in ("id", "kind", "owner"):
            if about.get(name) != declaration.get(name):
                self.fail(f"declaration.{name} is not what the leaf of {where} says")
        if about.get("previous_version") != previous:
            self.fail(f"{where}: its leaf's previous_version is not the version before it")
        opening = version.get("opening")
        values = _get(opening, "values") or {}
        salts = _get(opening, "salts") or {}
        for name in COMMITTED_FIELDS:
            if not opens(about.get(name), _get(values, name), _get(salts, name)):
                self.fail(f"{where}.opening.{name} does not match the commitment in its leaf")
        return version.get("version")

    def _check_current(
        self,
        declaration: Mapping[str, Any],
        first: Any,
        latest: Any,
        *,
        latest_entry: Mapping[str, Any] | None,
    ) -> None:
        """The declaration as shown is its latest version, opened."""
        values = _get(_get(latest, "opening"), "values") or {}
        if declaration.get("created_at") != _get(first, "at"):
            self.fail("declaration.created_at is not the time of its first version")
        if declaration.get("updated_at") != _get(latest, "at"):
            self.fail("declaration.updated_at is not the time of its latest version")
        if latest_entry is not None and declaration.get("late_notice") != latest_entry.get(
            "late_notice"
        ):
            self.fail("declaration.late_notice is not the latest version's")
        if declaration.get("version") != _get(latest, "version"):
            self.fail("declaration.version is not the latest version's")
        if declaration.get("state") != _get(latest, "state"):
            self.fail("declaration.state is not the latest version's")
        for name in COMMITTED_FIELDS:
            if declaration.get(name) != _get(values, name):
                self.fail(f"declaration.{name} is not the latest version's opened value")

    # -- notifications ----------------------------------------------------------------------

    def _check_notification(self, where: str, note: Any, declaration: Mapping[str, Any]) -> None:
        if not isinstance(note, dict):
            self.fail(f"{where} is not an object")
            return
        events = _list(note.get("events"))
        if events is None:
            self.fail(f"{where}.events is not a list")
            return
        responses = {
            r.get("number"): r for r in _list(note.get("responses")) or [] if isinstance(r, dict)
        }
        seen: dict[str, int] = {}
        answers: list[tuple[int, str, Any, Any]] = []  # (number, response, comment, at)
        for number, event in enumerate(events):
            at = f"{where}.events[{number}]"
            entry = self._entry(at, event)
            if entry is None or not isinstance(event, dict):
                continue
            kind = entry.get("type")
            if kind != event.get("type") or entry.get("at") != event.get("at"):
                self.fail(f"{at}: its type or time is not what its leaf says")
            seen[str(kind)] = seen.get(str(kind), 0) + 1
            openings = event.get("openings") or {}
            if kind == "notification.created":
                self._check_created(where, at, entry, note, openings, declaration)
                continue
            if not self._own(at, entry, note):
                continue
            if kind == "notification.delivered":
                if entry.get("at") != note.get("delivered_at"):
                    self.fail(f"{where}.delivered_at is not the time of its delivery entry")
            elif kind in ("notification.acknowledged", "notification.responded"):
                answer = self._check_answer(where, at, entry, openings, note, responses)
                if answer is not None:
                    answers.append(answer)
            else:
                self.fail(f"{at}: a {kind} entry is not about a notification")
        self._check_presence(where, note, seen, answers)

    def _own(self, at: str, entry: Mapping[str, Any], note: Mapping[str, Any]) -> bool:
        if entry.get("notification") != note.get("id") or entry.get("actor") != note.get(
            "recipient"
        ):
            self.fail(f"{at}: its leaf is about another notification or recipient")
            return False
        return True

    def _check_created(
        self,
        where: str,
        at: str,
        entry: Mapping[str, Any],
        note: Mapping[str, Any],
        openings: Mapping[str, Any],
        declaration: Mapping[str, Any],
    ) -> None:
        about = entry.get("notification")
        if not isinstance(about, dict):
            self.fail(f"{at}: its leaf is not a notification's creation")
            return
        for name in ("id", "recipient", "reason", "change"):
            if about.get(name) != note.get(name):
                self.fail(f"{where}.{name} is not what its creation entry says")
        if entry.get("at") != note.get("created_at"):
            self.fail(f"{where}.created_at is not the time of its creation entry")
        if bool(about.get("late_notice")) != note.get("late_notice"):
            self.fail(f"{where}.late_notice is not what its creation entry says")
        if about.get("overdue") != note.get("overdue"):
            self.fail(f"{where}.overdue is not what its creation entry says")
        subject = about.get("declaration")
        if isinstance(subject, dict):
            if subject != note.get("declaration"):
                self.fail(f"{where}.declaration is not what its creation entry says")
        else:
            # A redacted alert's entry holds the operation and its owner only as commitments,
            # opened in the coordinator's pack alone.
            if note.get("declaration") is not None:
                self.fail(f"{where}.declaration is shown, but its creation entry commits to it")
            subject = self._opened(at, "declaration", subject, openings)
            self._opened(at, "actor", entry.get("actor"), openings)
        conflicts = openings.get("conflicts")
        if not opens(about.get("conflicts"), _get(conflicts, "value"), _get(conflicts, "salt")):
            self.fail(f"{at}.openings.conflicts does not match the commitment in its leaf")
        alert = openings.get("protection")
        if about.get("protection") is None and note.get("protection") is not None:
            self.fail(f"{where}.protection is shown, but its creation entry holds no alert")
        if about.get("protection") is not None or alert is not None:
            if not opens(about.get("protection"), _get(alert, "value"), _get(alert, "salt")):
                self.fail(f"{at}.openings.protection does not match the commitment in its leaf")
            elif _get(alert, "value") != note.get("protection"):
                self.fail(f"{where}.protection is not the alert its creation entry commits to")
        protected = _get(_get(_get(alert, "value"), "declaration"), "id")
        if (_get(subject, "id"), protected).count(declaration.get("id")) == 0:
            self.fail(f"{at}: the notification is not about this declaration")

    def _opened(self, at: str, name: str, commitment: Any, openings: Mapping[str, Any]) -> Any:
        """The value a commitment of the entry is opened to; None when the pack does not
        open it (a failure when it opens it wrongly)."""
        opening = openings.get(name)
        if opening is None:
            return None
        if not opens(commitment, _get(opening, "value"), _get(opening, "salt")):
            self.fail(f"{at}.openings.{name} does not match the commitment in its leaf")
            return None
        return _get(opening, "value")

    def _check_answer(
        self,
        where: str,
        at: str,
        entry: Mapping[str, Any],
        openings: Mapping[str, Any],
        note: Mapping[str, Any],
        responses: Mapping[Any, Any],
    ) -> tuple[int, str, Any, Any] | None:
        """An acknowledgment (response 1) or a later response: its comment opened, and the
        pack's list of responses saying the same."""
        acknowledged = entry.get("type") == "notification.acknowledged"
        number = 1 if acknowledged else entry.get("number")
        response = entry.get("response", "acknowledged") if acknowledged else entry.get("response")
        comment = openings.get("comment")
        if not opens(entry.get("comment"), _get(comment, "value"), _get(comment, "salt")):
            self.fail(f"{at}.openings.comment does not match the commitment in its leaf")
        if acknowledged and entry.get("at") != note.get("acknowledged_at"):
            self.fail(f"{where}.acknowledged_at is not the time of its acknowledgment entry")
        listed = responses.get(number)
        if listed is not None and (
            listed.get("response") != response or listed.get("at") != entry.get("at")
        ):
            self.fail(f"{where}.responses (number {number}) is not what its entry says")
        if not isinstance(number, int):
            return None
        return number, str(response), _get(comment, "value"), entry.get("at")

    def _check_presence(
        self,
        where: str,
        note: Mapping[str, Any],
        seen: Mapping[str, int],
        answers: list[tuple[int, str, Any, Any]],
    ) -> None:
        """Every time the pack shows has its entry, and each entry type is there once."""
        disclosed = note.get("creation_disclosed") is not False
        if seen.get("notification.created", 0) != (1 if disclosed else 0):
            self.fail(f"{where}: its creation entry is missing or repeated")
        if not disclosed:
            self.result.creations_withheld += 1
        for kind, shown in (
            ("notification.delivered", note.get("delivered_at")),
            ("notification.acknowledged", note.get("acknowledged_at")),
        ):
            if seen.get(kind, 0) != (0 if shown is None else 1):
                self.fail(f"{where}: its {kind.split('.')[1]} entry is missing or repeated")
        listed = _list(note.get("responses")) or []
        numbers = sorted(_get(item, "number") for item in listed)
        if listed and numbers != sorted(answer[0] for answer in answers):
            self.fail(f"{where}.responses: not every response has its entry")
        if not answers:
            if any(note.get(name) is not None for name in ("response", "comment", "responded_at")):
                self.fail(f"{where}.response is shown, but no entry records one")
            return
        _, response, comment, at = max(answers, key=lambda answer: answer[0])
        if note.get("response") != response:
            self.fail(f"{where}.response is not the latest response in its entries")
        if note.get("comment") != comment:
            self.fail(f"{where}.comment is not the latest comment in its entries")
        if note.get("responded_at") != at:
            self.fail(f"{where}.responded_at is not the time of its latest response")


def _list(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None


def _get(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else None


def _hashes(value: Any) -> list[bytes] | None:
    if not isinstance(value, list):
        return None
    try:
        return [bytes.fromhex(item) for item in value]
    except (TypeError, ValueError):
        return None
