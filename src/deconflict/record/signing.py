"""The log's Ed25519 key and the signed tree heads.

A tree head is ``{"size", "root", "timestamp", "signature"}``; the signature is Ed25519 over
the UTF-8 bytes of ``canonical_json({"root": root_hex, "size": size, "timestamp": timestamp})``
in standard base64. Anyone holding the public key (raw 32 bytes, standard base64) can check a
head without trusting the server.

The private key lives in a PKCS#8 PEM file outside the database, readable by its owner only.
Nothing in this module logs it or returns it except ``load_key``/``generate_key`` to the
process that signs.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from deconflict.record.canonical import MAX_SAFE_INTEGER, canonical_json

ALGORITHM = "Ed25519"
_ROOT_HEX = re.compile(r"[0-9a-f]{64}")


def generate_key(path: Path) -> Ed25519PrivateKey:
    """Create a new key and write it to ``path`` (mode 0600); never overwrites a file.

    The file is created by ``os.open`` with O_EXCL and mode 0600, so it never exists with
    wider permissions, not even between creation and a chmod, and an existing key (the one
    every saved head was signed with) cannot be clobbered: ``FileExistsError`` instead.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(path, flags, 0o600)
    try:
        os.write(descriptor, pem)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return key


def load_key(path: Path) -> Ed25519PrivateKey:
    """Read the key written by ``generate_key``.

    Refuses (``PermissionError``) a file that group or others may read or write, as ssh
    does: such a key may already be known to others, and heads signed with it prove nothing.
    """
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(
            f"{path} is accessible to other users (mode {stat.filemode(mode)}); "
            "the log signing key must be readable by its owner only (chmod 600)"
        )
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key in standard base64: what ``init`` prints and clients pin."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def head_message(size: int, root_hex: str, timestamp: str) -> bytes:
    """The exact bytes a tree head signature covers."""
    return canonical_json({"root": root_hex, "size": size, "timestamp": timestamp}).encode("utf-8")


def sign_head(key: Ed25519PrivateKey, size: int, root_hex: str, timestamp: str) -> dict[str, Any]:
    """The signed TreeHead ``{"size", "root", "timestamp", "signature"}``."""
    signature = key.sign(head_message(size, root_hex, timestamp))
    return {
        "size": size,
        "root": root_hex,
        "timestamp": timestamp,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def verify_head(public_key_b64: str, head: Any) -> bool:
    """True when ``head`` is a well-formed TreeHead signed by the key; False otherwise."""
    if not _well_formed(head):
        return False
    try:
        public_key = Ed25519PublicKey.from_public_bytes(_b64decode(public_key_b64))
        signature = _b64decode(head["signature"])
        public_key.verify(signature, head_message(head["size"], head["root"], head["timestamp"]))
    except (InvalidSignature, ValueError):
        return False
    return True


def _well_formed(head: Any) -> bool:
    # A head from the network may be anything; refuse rather than sign-check a look-alike
    # (a size of True, an upper-case root that another verifier would read differently).
    if not isinstance(head, dict):
        return False
    size, root, timestamp = head.get("size"), head.get("root"), head.get("timestamp")
    return (
        isinstance(size, int)
        and not isinstance(size, bool)
        and 0 <= size <= MAX_SAFE_INTEGER
        and isinstance(root, str)
        and _ROOT_HEX.fullmatch(root) is not None
        and isinstance(timestamp, str)
        and isinstance(head.get("signature"), str)
    )


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not standard base64") from exc
