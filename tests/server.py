"""Running a real ``deconflict serve`` process for tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

DECONFLICT = [sys.executable, "-m", "deconflict"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def init_db(tmp: Path, name: str = "served.db") -> tuple[str, str]:
    """``deconflict init`` a fresh SQLite file; returns (db URL, coordinator token)."""
    db_url = f"sqlite:///{tmp / name}"
    done = subprocess.run(
        [*DECONFLICT, "init", "--db", db_url], capture_output=True, text=True, check=True
    )
    return db_url, json.loads(done.stdout)["coordinator_token"]


@contextmanager
def serving(
    db_url: str, *, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ``deconflict serve`` subprocess; yields its base URL and the process. One worker
    unless told otherwise, so that the process a test kills is the one serving."""
    port = free_port()
    process = subprocess.Popen(
        [
            *DECONFLICT,
            "serve",
            "--db",
            db_url,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            str(workers),
        ],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        if workers > 1:
            wait_for_all_workers(process)
        wait_until_up(base, process)
        yield base, process
    finally:
        stop(process)


def wait_for_all_workers(process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Wait for ``serve --workers N`` to say every worker listens."""
    assert process.stderr is not None
    said: list[bytes] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            said.append(line)
            if b"workers are serving" in line:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    if reader.is_alive() or process.poll() is not None:
        raise RuntimeError(f"the workers did not come up: {b''.join(said).decode()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a server process gracefully, or kill it after 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr:
        process.stderr.close()


def wait_until_up(base: str, process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"deconflict serve exited: {error}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("deconflict serve did not come up")


def register(
    base: str, coordinator_token: str, name: str, role: str, **fields: object
) -> dict[str, str]:
    answer = httpx.post(
        f"{base}/v1/parties",
        json={"name": name, "role": role, **fields},
        headers={"Authorization": f"Bearer {coordinator_token}"},
        timeout=10,
    )
    answer.raise_for_status()
    party: dict[str, str] = answer.json()
    return party
