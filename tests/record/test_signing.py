"""The log key file and tree head signatures, checked with cryptography directly."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deconflict.record import signing

ROOT = "ab" * 32


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "log-key.pem"


def test_generated_key_file_is_owner_only_pkcs8(key_path: Path) -> None:
    old_umask = os.umask(0)  # even with a permissive umask the file must be 0600
    try:
        key = signing.generate_key(key_path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert signing.public_key_b64(signing.load_key(key_path)) == signing.public_key_b64(key)


def test_generate_refuses_to_overwrite_an_existing_key(key_path: Path) -> None:
    signing.generate_key(key_path)
    before = key_path.read_bytes()
    with pytest.raises(FileExistsError):
        signing.generate_key(key_path)
    assert key_path.read_bytes() == before


def test_generate_does_not_follow_a_planted_symlink(tmp_path: Path, key_path: Path) -> None:
    target = tmp_path / "elsewhere"
    key_path.symlink_to(target)
    with pytest.raises(FileExistsError):
        signing.generate_key(key_path)
    assert not target.exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_load_refuses_a_key_others_can_read(key_path: Path, mode: int) -> None:
    signing.generate_key(key_path)
    key_path.chmod(mode)
    with pytest.raises(PermissionError, match="chmod 600"):
        signing.load_key(key_path)


def test_public_key_is_raw_32_bytes_in_standard_base64(key_path: Path) -> None:
    encoded = signing.public_key_b64(signing.generate_key(key_path))
    assert len(base64.b64decode(encoded, validate=True)) == 32


def test_head_signature_covers_the_canonical_json_of_root_size_timestamp(
    key_path: Path,
) -> None:
    key = signing.generate_key(key_path)
    head = signing.sign_head(key, 42, ROOT, "2016-12-14T05:00:00Z")
    assert set(head) == {"size", "root", "timestamp", "signature"}
    # Checked independently of the module: the message as API.md spells it.
    message = ('{"root":"' + ROOT + '","size":42,"timestamp":"2016-12-14T05:00:00Z"}').encode()
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(signing.public_key_b64(key)))
    public.verify(base64.b64decode(head["signature"]), message)  # raises if wrong
    assert signing.verify_head(signing.public_key_b64(key), head)


def test_key_material_does_not_appear_in_heads(key_path: Path) -> None:
    key = signing.generate_key(key_path)
    head = signing.sign_head(key, 1, ROOT, "2016-12-14T05:00:00Z")
    pem_body = "".join(key_path.read_text().splitlines()[1:-1])
    assert pem_body not in json.dumps(head)
    assert "PRIVATE" not in repr(key)


@pytest.mark.parametrize(
    "change",
    [
        {"size": 43},
        {"root": "cd" * 32},
        {"timestamp": "2016-12-14T05:00:01Z"},
        {"signature": base64.b64encode(b"\0" * 64).decode()},
        {"signature": "not base64!"},
        {"size": True},
        {"size": -1},
        {"size": "42"},
        {"root": ROOT.upper()},
        {"root": ROOT[:-2]},
        {"timestamp": None},
    ],
    ids=lambda change: next(iter(change)) + "=" + repr(next(iter(change.values())))[:12],
)
def test_verify_head_rejects_any_change(key_path: Path, change: dict[str, object]) -> None:
    key = signing.generate_key(key_path)
    head = signing.sign_head(key, 42, ROOT, "2016-12-14T05:00:00Z")
    assert not signing.verify_head(signing.public_key_b64(key), {**head, **change})


def test_verify_head_rejects_another_key_and_junk(tmp_path: Path, key_path: Path) -> None:
    key = signing.generate_key(key_path)
    other = signing.generate_key(tmp_path / "other.pem")
    head = signing.sign_head(key, 42, ROOT, "2016-12-14T05:00:00Z")
    assert not signing.verify_head(signing.public_key_b64(other), head)
    assert not signing.verify_head("short", head)
    assert not signing.verify_head(signing.public_key_b64(key), [head])
    assert not signing.verify_head(signing.public_key_b64(key), {"size": 42})
