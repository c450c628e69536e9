"""``deconflict serve --workers N``: N processes, each listening on the port itself.

The kernel spreads connections over the workers (SO_REUSEPORT), a dead worker is replaced,
and killing ``serve`` (even with SIGKILL) stops every worker, freeing the port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from server import DECONFLICT, free_port, init_db, register, serving

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    """The worker processes of ``serve`` (multiprocessing's resource tracker aside)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"resource_tracker" not in command:
                found.append(int(child))
    return found


def established_on(pid: int, port: int) -> int:
    """How many established TCP connections to ``port`` process ``pid`` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def wait_for(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_connections_are_spread_over_the_workers(tmp_path: Path) -> None:
    """Clients that keep their connections open (every HTTP library, every proxy) reach
    every worker, not only the first one up."""
    db_url, coordinator = init_db(tmp_path)
    with serving(db_url, workers=2) as (base, process):
        port = int(base.rsplit(":", 1)[1])
        workers = children(process.pid)
        assert len(workers) == 2
        party = register(base, coordinator, "Operator", "operator")
        clients = [httpx.Client(base_url=base, timeout=10) for _ in range(16)]
        try:
            for client in clients:  # each opens its own connection and keeps it
                me = client.get("/v1/me", headers={"Authorization": f"Bearer {party['token']}"})
                assert me.status_code == 200
            held = {worker: established_on(worker, port) for worker in workers}
            # 16 connections hashed over 2 sockets: all on one worker has odds of 2 in 65,536.
            assert sum(held.values()) == 16, held
            assert all(count > 0 for count in held.values()), held
        finally:
            for client in clients:
                client.close()


def test_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    db_url, _ = init_db(tmp_path)
    with serving(db_url, workers=2) as (base, process):
        first, second = children(process.pid)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: first not in children(process.pid) and len(children(process.pid)) == 2)
        assert second in children(process.pid)
        for _ in range(20):  # whichever worker answers, the service answers
            with httpx.Client(base_url=base, timeout=30) as client:
                assert client.get("/healthz").status_code == 200
        assert process.poll() is None


def test_killing_serve_stops_every_worker(tmp_path: Path) -> None:
    """Even SIGKILL, which the parent cannot catch: no worker is left holding the port."""
    db_url, _ = init_db(tmp_path)
    with serving(db_url, workers=2) as (base, process):
        port = int(base.rsplit(":", 1)[1])
        workers = children(process.pid)
        assert accepts(port)
        process.kill()
        process.wait()
        wait_for(lambda: not any(Path(f"/proc/{w}").exists() for w in workers), timeout_s=30)
        assert not accepts(port)


def test_a_second_serve_on_a_port_in_use_fails(tmp_path: Path) -> None:
    """Workers share their port with one another, never with another serve: two
    deployments answering on one address would mix their answers."""
    db_url, _ = init_db(tmp_path)
    other_url, _ = init_db(tmp_path, "other.db")
    with serving(db_url, workers=2) as (base, _process):
        port = base.rsplit(":", 1)[1]
        second = subprocess.run(
            [*DECONFLICT, "serve", "--db", other_url, "--port", port, "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr


def test_a_worker_that_cannot_start_stops_serve(tmp_path: Path) -> None:
    """A worker dying before it serves is not started again and again: serve stops with an
    error. (``serve`` checks the database before starting workers, so the workers are
    started here directly on a database nobody initialised.)"""
    port = free_port()
    ended = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from deconflict.api.serving import serve_workers; "
            f"sys.exit(serve_workers('127.0.0.1', {port}, 2, 'warning'))",
        ],
        env={**os.environ, "DECONFLICT_DB": f"sqlite:///{tmp_path / 'never-initialised.db'}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ended.returncode == 1, ended.stderr
    assert "a worker exited at start-up" in ended.stderr
    assert ended.stderr.count("a worker exited") == 1  # stopped at the first, no restarts
    assert not accepts(port)
