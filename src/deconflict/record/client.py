"""A party's check of a running service over HTTP (``deconflict verify --url``).

``verify_remote`` trusts nothing but what a party saved earlier: signed heads and receipts
(and the openings it was given). It checks the server's current head against each of them
with consistency and inclusion proofs, so a rewritten, forked or shrunk history is detected.
It stops at the first problem and names it. ``fetch_included_leaf`` gets one leaf of the
public log, proven to be in its signed tree (``deconflict check-opening --url``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deconflict.record import merkle
from deconflict.record.entries import check_declaration_opening, check_notification_opening
from deconflict.record.findings import AuditResult, Problem, ProblemFound
from deconflict.record.signing import verify_head


def verify_remote(
    base_url: str,
    heads_file: Path,
    receipts_file: Path | None = None,
    client: httpx.Client | None = None,
    *,
    public_key_b64: str | None = None,
) -> AuditResult:
    """Check a server's log against the heads and receipts saved earlier (``verify --url``).

    ``heads_file`` holds one TreeHead per line (JSON lines); the new head is appended when
    every check passes. ``receipts_file`` holds one Receipt per line (or whole write answers
    that contain a ``receipt``), and may hold the openings a party was given (the answers of
    ``GET /v1/declarations/{id}/opening`` and ``GET /v1/notifications/{id}/opening``): each
    must open its leaves, and each leaf must be the log's, in the current signed tree.
    ``public_key_b64`` pins the key printed by ``init``; without it the server's key is used,
    but every saved head must verify with it, so a server that changes its key is detected
    all the same.
    """
    owned = client is None
    http = httpx.Client(timeout=30.0) if client is None else client
    audit = _RemoteAudit(http, base_url.rstrip("/"), heads_file, receipts_file, public_key_b64)
    try:
        audit.run()
    except ProblemFound as found:
        audit.result.problem = found.problem
    finally:
        if owned:
            http.close()
    return audit.result


@dataclass
class _RemoteAudit:
    client: httpx.Client
    base_url: str
    heads_file: Path
    receipts_file: Path | None
    pinned_key: str | None
    result: AuditResult = field(default_factory=AuditResult)
    key: str = ""
    head: dict[str, Any] = field(default_factory=dict)
    roots_by_size: dict[int, str] = field(default_factory=dict)

    def run(self) -> None:
        self.key = self._public_key()
        self.head = self._get("/v1/log/head")
        if not verify_head(self.key, self.head):
            raise ProblemFound(Problem("the server's current head is not signed by its log key"))
        self.result.size = self.head["size"]
        self._remember(self.head, "the server's current head")
        saved = _read_json_lines(self.heads_file, missing_ok=True)
        for line, head in saved:
            self._check_saved_head(head, f"{self.heads_file.name} line {line}")
        if self.receipts_file is not None:
            for line, receipt in _read_json_lines(self.receipts_file, missing_ok=False):
                where = f"{self.receipts_file.name} line {line}"
                if _is_opening(receipt):
                    self._check_opening(receipt, where)
                else:
                    self._check_receipt(receipt, where)
        if all(head != self.head for _, head in saved):
            with self.heads_file.open("a", encoding="utf-8") as out:
                out.write(json.dumps(self.head, sort_keys=True) + "\n")

    def _public_key(self) -> str:
        answer = self._get("/v1/log/public-key")
        if answer.get("algorithm") != "Ed25519" or not isinstance(answer.get("public_key"), str):
            raise ProblemFound(Problem(f"unexpected public key answer {answer!r}"))
        key: str = answer["public_key"]
        if self.pinned_key is not None and key != self.pinned_key:
            raise ProblemFound(Problem("the server's log key is not the pinned key"))
        return key

    def _check_saved_head(self, head: Any, where: str) -> None:
        if not verify_head(self.key, head):
            raise ProblemFound(
                Problem("saved head is not signed by the server's log key", subject=where)
            )
        self._remember(head, where)
        self._check_consistent(head, where)
        self.result.heads_checked += 1

    def _remember(self, head: dict[str, Any], where: str) -> None:
        # Two signed heads with one size and two roots prove the log forked: no proof needed.
        seen = self.roots_by_size.setdefault(head["size"], head["root"])
        if seen != head["root"]:
            raise ProblemFound(
                Problem(f"two different roots are signed for size {head['size']}", subject=where)
            )

    def _check_consistent(self, old: dict[str, Any], where: str) -> None:
        first, second = old["size"], self.head["size"]
        if first > second:
            raise ProblemFound(
                Problem(f"the log shrank from {first} to {second} entries", subject=where)
            )
        path: list[bytes] = []
        if 0 < first < second:
            answer = self._get("/v1/log/proof/consistency", first=first, second=second)
            path = _hex_list(answer.get("path"), where)
        first_root, second_root = bytes.fromhex(old["root"]), bytes.fromhex(self.head["root"])
        if not merkle.verify_consistency(first, second, first_root, second_root, path):
            raise ProblemFound(
                Problem(
                    f"the log of size {second} is not an extension of the saved one of size "
                    f"{first}: history was rewritten",
                    subject=where,
                )
            )

    def _check_receipt(self, line: Any, where: str) -> None:
        receipt = line.get("receipt", line) if isinstance(line, dict) else None
        if not isinstance(receipt, dict) or not verify_head(self.key, receipt.get("tree_head")):
            raise ProblemFound(
                Problem("the receipt's tree head is not signed by the log key", subject=where)
            )
        index, digest_hex = receipt.get("index"), receipt.get("leaf_hash")
        if not isinstance(index, int) or not 0 <= index < receipt["tree_head"]["size"]:
            raise ProblemFound(
                Problem("the receipt's index is not inside its tree head", subject=where)
            )
        digest = _hex_list([digest_hex], where)[0]
        self._remember(receipt["tree_head"], where)
        self._check_consistent(receipt["tree_head"], where)
        self._check_included(index, digest, where)
        self.result.receipts_checked += 1
        self.result.entries_checked += 1

    def _check_opening(self, opening: dict[str, Any], where: str) -> None:
        """An opening a party holds: it opens its leaves, and they are the log's."""
        if "entries" in opening:
            failed = check_notification_opening(opening)
            listed = opening["entries"] if isinstance(opening["entries"], list) else []
        else:
            failed = check_declaration_opening(opening.get("leaf") or "{}", opening)
            listed = [opening]
        if failed:
            raise ProblemFound(
                Problem(
                    f"the opening does not open its leaves at {', '.join(failed)}", subject=where
                )
            )
        for item in listed:
            index, leaf = item.get("log_index"), item.get("leaf")
            if not isinstance(index, int) or not isinstance(leaf, str):
                raise ProblemFound(Problem("an opening without log_index and leaf", subject=where))
            if not 0 <= index < self.head["size"]:
                raise ProblemFound(
                    Problem("the opening's entry is not in the current log", index, subject=where)
                )
            self._check_included(index, merkle.leaf_hash(leaf.encode("utf-8")), where)
            self.result.entries_checked += 1
        self.result.openings_checked += 1

    def _check_included(self, index: int, digest: bytes, where: str) -> None:
        """Entry ``index`` hashes to ``digest`` and is in the current signed tree."""
        size = self.head["size"]
        proof = self._get("/v1/log/proof/inclusion", index=index, size=size)
        path = _hex_list(proof.get("path"), where)
        included = merkle.verify_inclusion(
            digest, index, size, path, bytes.fromhex(self.head["root"])
        )
        if not included or proof.get("leaf_hash") != digest.hex():
            raise ProblemFound(
                Problem("the entry is not in the current signed log", index, subject=where)
            )
        listed = self._get("/v1/log/entries", start=index, end=index + 1).get("entries") or [{}]
        leaf = listed[0].get("leaf")
        if not isinstance(leaf, str) or merkle.leaf_hash(leaf.encode("utf-8")) != digest:
            raise ProblemFound(
                Problem(
                    "the served entry does not hash to the leaf hash held",
                    index,
                    subject=where,
                )
            )

    def _get(self, path: str, **params: int) -> dict[str, Any]:
        try:
            response = self.client.get(self.base_url + path, params=params)
        except httpx.HTTPError as exc:
            raise ProblemFound(Problem(f"GET {path} failed: {exc}")) from exc
        if response.status_code != 200:
            raise ProblemFound(
                Problem(f"GET {path} answered {response.status_code}: {response.text[:200]}")
            )
        try:
            answer = response.json()
        except ValueError as exc:
            raise ProblemFound(Problem(f"GET {path} did not answer JSON")) from exc
        if not isinstance(answer, dict):
            raise ProblemFound(Problem(f"GET {path} did not answer a JSON object"))
        return answer


def _is_opening(line: Any) -> bool:
    """An opening document (a declaration's or a notification's), not a receipt line."""
    return (
        isinstance(line, dict)
        and "receipt" not in line
        and (("leaf" in line and "log_index" in line) or "entries" in line)
    )


def _read_json_lines(path: Path, *, missing_ok: bool) -> list[tuple[int, Any]]:
    if missing_ok and not path.exists():
        return []
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            lines.append((number, json.loads(text)))
        except ValueError as exc:
            raise ProblemFound(
                Problem("not a JSON line", subject=f"{path.name} line {number}")
            ) from exc
    return lines


def _hex_list(value: Any, where: str) -> list[bytes]:
    try:
        if not isinstance(value, list):
            raise TypeError("not a list")
        return [bytes.fromhex(item) for item in value]
    except (TypeError, ValueError) as exc:
        raise ProblemFound(
            Problem(f"malformed hashes in a server answer: {exc}", subject=where)
        ) from exc


class AuditError(Exception):
    """A remote check failed; the message says what did not hold."""


def fetch_included_leaf(
    base_url: str,
    index: int,
    client: httpx.Client | None = None,
    *,
    public_key_b64: str | None = None,
) -> str:
    """The leaf at ``index`` of a service's public log, proven to be in its signed tree.

    Checks the current head's signature, fetches the entry, hashes it and verifies an
    inclusion proof against that head, so the leaf does not rest on the server's word.
    """
    owned = client is None
    http = httpx.Client(timeout=30.0) if client is None else client
    remote = _RemoteAudit(http, base_url.rstrip("/"), Path(os.devnull), None, public_key_b64)
    try:
        key = remote._public_key()
        head = remote._get("/v1/log/head")
        if not verify_head(key, head):
            raise AuditError("the server's current head is not signed by its log key")
        entries = remote._get("/v1/log/entries", start=index, end=index + 1)["entries"]
        if len(entries) != 1 or not isinstance(entries[0].get("leaf"), str):
            raise AuditError(f"the log has no entry {index}")
        leaf: str = entries[0]["leaf"]
        digest = merkle.leaf_hash(leaf.encode("utf-8"))
        proof = remote._get("/v1/log/proof/inclusion", index=index, size=head["size"])
        path = _hex_list(proof.get("path"), "the inclusion proof")
        if not merkle.verify_inclusion(
            digest, index, head["size"], path, bytes.fromhex(head["root"])
        ):
            raise AuditError(f"entry {index} is not included in the signed tree")
        return leaf
    except ProblemFound as found:
        raise AuditError(str(found.problem)) from found
    finally:
        if owned:
            http.close()
