"""Salted SHA-256 commitments: how sensitive values enter the public record.

``commit(value, salt)`` is ``SHA-256(salt ‖ canonical_json(value))`` in hex. Publishing the
commitment reveals nothing usable about the value (the salt is 32 random bytes, so it cannot
be guessed by trying likely values), yet whoever holds the value and the salt (the opening)
can later prove that this exact value was committed to.

The salt is always exactly 32 bytes. A variable-length salt would break binding: with
``salt ‖ "1"`` equal to ``salt' ‖ "11"`` one commitment would open to both 1 and 11.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from deconflict.record.canonical import canonical_json

SALT_BYTES = 32


def new_salt() -> str:
    """A fresh salt: 32 random bytes from the OS CSPRNG, as 64 lowercase hex digits."""
    return secrets.token_hex(SALT_BYTES)


def commit(value: Any, salt_hex: str) -> str:
    """Hex SHA-256 of the salt bytes followed by the UTF-8 canonical JSON of ``value``.

    Raises ``ValueError`` when the salt is not 64 hex digits or the value has no canonical form.
    """
    salt = _salt_bytes(salt_hex)
    return hashlib.sha256(salt + canonical_json(value).encode("utf-8")).hexdigest()


def check_opening(commitment: str, value: Any, salt_hex: str) -> bool:
    """True when ``(value, salt_hex)`` opens ``commitment``; False for any malformed input."""
    try:
        expected = commit(value, salt_hex)
    except (ValueError, TypeError):
        return False
    # Constant time, so a verifier answering over the network leaks nothing about the prefix
    # that matched.
    return hmac.compare_digest(expected.encode("ascii"), commitment.lower().encode("utf-8"))


def _salt_bytes(salt_hex: str) -> bytes:
    salt = bytes.fromhex(salt_hex)
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a salt is {SALT_BYTES} bytes ({2 * SALT_BYTES} hex digits)")
    return salt
