"""Small leaks closed: security headers on every answer, the event stream's token kept out of
the access log, and the SQLite files readable by their owner only."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from deconflict.api.serving import redact_query
from deconflict.storage.database import Database
from server import DECONFLICT, free_port, init_db, register, stop, wait_until_up
from support import Service, point, volume

EVERY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def test_api_answers_carry_security_headers_and_are_not_stored(service: Service) -> None:
    operator = service.register("Air", "operator")
    answers = {
        "200": operator.get("/v1/me"),
        "201": service.coordinator.post("/v1/parties", {"name": "Aid", "role": "humanitarian"}),
        "400": operator.post("/v1/declarations", {"kind": "operation"}),
        "401": service.client.get("/v1/me"),
        "404": operator.get("/v1/declarations/dcl_nothing"),
        "405": service.client.request("TRACE", "/v1/me"),
        "413": operator.client.post(
            "/v1/declarations",
            content=b"{}",
            headers={**operator.headers, "content-length": str(1 << 40)},
        ),
        "public": service.client.get("/v1/log/head"),
        "schema": service.client.get("/openapi.json"),
    }
    for name, answer in answers.items():
        assert answer.status_code != 500, name
        for header, value in EVERY.items():
            assert answer.headers.get(header) == value, (name, header)
        assert answer.headers.get("cache-control") == "no-store", name
        # The page's policy is for the page: API answers are not documents to render.
        assert "content-security-policy" not in answer.headers, name
    assert answers["201"].json()["token"]  # the answer that must never sit in a cache


def test_the_page_keeps_its_policy_and_is_not_framed(service: Service) -> None:
    for path in ("/", "/static/app.css"):
        answer = service.client.get(path)
        assert answer.status_code == 200
        for header, value in EVERY.items():
            assert answer.headers.get(header) == value, (path, header)
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert "no-store" not in answer.headers.get("cache-control", "")  # cacheable assets


def test_the_event_stream_chooses_its_own_caching(service: Service) -> None:
    # 401 before the stream starts: the headers are those of every API answer.
    refused = service.client.get("/v1/inbox/stream?access_token=wrong")
    assert refused.status_code == 401
    assert refused.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("/v1/inbox/stream?access_token=s3cret", "/v1/inbox/stream?access_token=[redacted]"),
        ("/v1/inbox/stream?after=4&access_token=s3cret&x=1", None),
        ("/v1/inbox/stream?access%5Ftoken=s3cret", "/v1/inbox/stream?access%5Ftoken=[redacted]"),
        ("/v1/inbox/stream?access_token=a&access_token=b", None),
        ("/v1/declarations?kind=site", "/v1/declarations?kind=site"),
        ("/v1/inbox/stream", "/v1/inbox/stream"),
    ],
)
def test_redact_query_hides_only_the_token(target: str, shown: str | None) -> None:
    redacted = redact_query(target)
    assert "s3cret" not in redacted and "=a" not in redacted and "=b" not in redacted
    if shown is not None:
        assert redacted == shown
    assert redacted.split("?")[0] == target.split("?")[0]


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])  # uvicorn in this process, or in workers
def test_the_access_log_of_serve_never_shows_a_stream_token(tmp_path: Path, workers: str) -> None:
    db_url, coordinator = init_db(tmp_path)
    port = free_port()
    command = [*DECONFLICT, "serve", "--db", db_url, "--port", str(port), "--workers", workers]
    process = subprocess.Popen(
        [*command, "--log-level", "info"],
        stdout=subprocess.PIPE,  # uvicorn's access log goes to standard output
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        token = register(base, coordinator, "Relief", "humanitarian")["token"]
        url = f"{base}/v1/inbox/stream?after=0&access_token={token}"
        with httpx.stream("GET", url, timeout=10) as answer:
            assert answer.status_code == 200
            assert next(answer.iter_text()).startswith("retry:")
        refused = httpx.get(f"{base}/v1/inbox/stream?access_token=not-{token}", timeout=10)
        assert refused.status_code == 401
    finally:
        process.terminate()  # uvicorn writes its log lines before it exits
        try:
            out, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
    log = out.decode()
    assert "GET /v1/inbox/stream?after=0&access_token=[redacted]" in log, log
    assert token not in log


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_init_and_serve_leave_the_database_files_owner_only(tmp_path: Path) -> None:
    db_url, coordinator = init_db(tmp_path)
    database = tmp_path / "served.db"
    port = free_port()
    process = subprocess.Popen(
        [*DECONFLICT, "serve", "--db", db_url, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        party = register(base, coordinator, "Relief", "humanitarian")
        made = httpx.post(
            f"{base}/v1/declarations",
            json={"kind": "site", "volumes": [volume(point(30, 10))]},
            headers={"Authorization": f"Bearer {party['token']}"},
        )
        assert made.status_code == 201, made.text
        files = [database, *(Path(f"{database}{s}") for s in ("-wal", "-shm", "-writer"))]
        for path in files:
            assert path.exists(), path  # the server is running: WAL and lock files exist
            assert mode(path) == 0o600, (path, oct(mode(path)))
    finally:
        stop(process)
    assert mode(tmp_path / "served.db.key") == 0o600


def test_an_older_world_readable_database_is_narrowed_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Database(f"sqlite:///{path}").dispose()
    for name in (path, Path(f"{path}-wal")):
        name.touch()
        os.chmod(name, 0o644)
    Database(f"sqlite:///{path}").dispose()
    assert mode(path) == 0o600
    assert mode(Path(f"{path}-wal")) == 0o600


def test_a_new_database_file_is_never_world_readable(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = Database(f"sqlite:///{path}")
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert mode(name) == 0o600, name
    db.dispose()
