"""A real ``deconflict serve`` on a fresh SQLite database, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


class ServerFailed(RuntimeError):
    """``deconflict init`` or ``serve`` did not come up; the message holds their output."""


@dataclass
class Server:
    """A running ``deconflict serve`` and what ``deconflict init`` printed."""

    base_url: str
    db_url: str
    coordinator_token: str
    log_public_key: str
    log_path: Path
    scenario_tokens: dict[str, str] = field(default_factory=dict)  # party name -> token
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, token: str) -> httpx.Client:
        """An HTTP client that calls the API as the party holding ``token``."""
        client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        self.clients.append(client)
        return client

    def create_party(self, name: str, role: str) -> dict[str, Any]:
        """Register a party as the coordinator; the answer includes its token."""
        response = self.client(self.coordinator_token).post(
            "/v1/parties", json={"name": name, "role": role}
        )
        if response.status_code != 201:
            raise AssertionError(f"creating {name!r}: {response.status_code} {response.text}")
        party: dict[str, Any] = response.json()
        return party

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()


def deconflict_command() -> list[str]:
    """The ``deconflict`` console script of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("deconflict")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("deconflict")
    if found:
        return [found]
    return [sys.executable, "-c", "from deconflict.cli import main; main()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    folder: Path, *, scenario: Path | None = None, start_timeout_s: float = 30
) -> Iterator[Server]:
    """``deconflict init`` (then ``deconflict load`` of ``scenario``, if given) and
    ``deconflict serve`` in ``folder``; stopped on exit."""
    db_url = f"sqlite:///{folder / 'deconflict.db'}"
    command = deconflict_command()
    init = subprocess.run(
        [*command, "init", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        check=False,
    )
    if init.returncode != 0:
        raise ServerFailed(f"deconflict init failed:\n{init.stdout}\n{init.stderr}")
    printed = json.loads(init.stdout)
    tokens = _load(command, db_url, scenario, folder) if scenario else {}
    port = free_port()
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "serve", "--db", db_url, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    served = Server(
        base_url=f"http://127.0.0.1:{port}",
        db_url=db_url,
        coordinator_token=printed["coordinator_token"],
        log_public_key=printed["log_public_key"],
        log_path=log_path,
        scenario_tokens=tokens,
    )
    try:
        _wait_until_up(served, process, start_timeout_s)
        yield served
    finally:
        served.close_clients()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


_PARTY_ROW = re.compile(
    r"^\s*(?P<name>\S.*?)\s{2,}(?:operator|humanitarian|observer)\s+(?P<token>[\w-]{20,})\s*$",
    re.MULTILINE,
)


def _load(command: list[str], db_url: str, scenario: Path, folder: Path) -> dict[str, str]:
    """``deconflict load``; the parties' tokens, read from the table it prints."""
    loaded = subprocess.run(
        [*command, "load", "--db", db_url, str(scenario)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
        check=False,
        env={**os.environ, "COLUMNS": "240", "NO_COLOR": "1"},  # one row per party
    )
    if loaded.returncode != 0:
        raise ServerFailed(f"deconflict load failed:\n{loaded.stdout}\n{loaded.stderr}")
    tokens = {m["name"]: m["token"] for m in _PARTY_ROW.finditer(loaded.stdout)}
    if not tokens:
        raise ServerFailed(f"no party tokens in the output of deconflict load:\n{loaded.stdout}")
    return tokens


def _wait_until_up(served: Server, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(
                f"deconflict serve exited with {process.returncode}:\n{served.log_tail()}"
            )
        try:
            if httpx.get(f"{served.base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ServerFailed(
        f"deconflict serve did not answer within {timeout_s} s:\n{served.log_tail()}"
    )
