"""``deconflict evidence`` downloads a pack from a real ``serve`` process, and ``deconflict
verify --evidence FILE --public-key KEY`` checks it with the service stopped: exit 0 for the
pack as served, 1 naming the part for a copy with one byte changed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from evidence_scenario import build_world, public_key
from server import DECONFLICT, serving
from support import FakeClock, make_service, usual_cast


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DECONFLICT, *args], capture_output=True, text=True, cwd=cwd)


def test_download_then_verify_offline(tmp_path: Path) -> None:
    for service in make_service(tmp_path, FakeClock()):
        cast = usual_cast(service)
        world = build_world(service, cast)
        key = public_key(cast["coordinator"])
        token = cast["relief"].token
    service.deployment.db.dispose()
    env = {"DECONFLICT_KEY_FILE": str(tmp_path / "log.key")}
    with serving(service.db_url, env=env) as (base, _):
        got = run("evidence", "--url", base, "--token", token, world.hospital, cwd=tmp_path)
        assert got.returncode == 0, got.stderr
        pdf = run(
            "evidence", "--url", base, "--token", token, "--pdf", "-o", "report.pdf",
            world.hospital, cwd=tmp_path,
        )  # fmt: skip
        assert pdf.returncode == 0, pdf.stderr
        refused = run("evidence", "--url", base, "--token", "nope", world.hospital, cwd=tmp_path)
        assert refused.returncode == 1 and "401" in refused.stderr
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    pack_file = tmp_path / f"evidence-{world.hospital}.json"
    # The service is stopped: the check needs nothing but the file and the key.
    verified = run("verify", "--evidence", str(pack_file), "--public-key", key, cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "holds" in verified.stdout
    pack = json.loads(pack_file.read_text("utf-8"))
    pack["versions"][1]["opening"]["salts"]["volumes"] = "0" * 64
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(pack), "utf-8")
    failed = run("verify", "--evidence", str(tampered), "--public-key", key, cwd=tmp_path)
    assert failed.returncode == 1
    assert "versions[1].opening.volumes does not match the commitment in its leaf" in (
        failed.stdout
    )
    keyless = run("verify", "--evidence", str(pack_file), cwd=tmp_path)
    assert keyless.returncode == 1 and "--public-key" in keyless.stderr
