"""Fixtures for the end-to-end tests of the web page: a real ``deconflict serve`` on a
fresh SQLite database, an HTTP client to seed it, and Debian's headless Chromium driven by
Playwright (never a browser downloaded by ``playwright install``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = os.environ.get("DECONFLICT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}


def _deconflict_command() -> list[str]:
    """The ``deconflict`` console script of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("deconflict")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("deconflict")
    if found:
        return [found]
    return [sys.executable, "-c", "from deconflict.cli import main; main()"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running ``deconflict serve`` and what ``deconflict init`` printed."""

    base_url: str
    db_url: str
    coordinator_token: str
    log_public_key: str
    log_path: Path
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
        assert response.status_code == 201, response.text
        party: dict[str, Any] = response.json()
        return party

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def close(self) -> None:
        for client in self.clients:
            client.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh deployment served on a free local port, stopped after the test."""
    db_url = f"sqlite:///{tmp_path / 'deconflict.db'}"
    command = _deconflict_command()
    init = subprocess.run(
        [*command, "init", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert init.returncode == 0, f"deconflict init failed:\n{init.stdout}\n{init.stderr}"
    printed = json.loads(init.stdout)
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "serve", "--db", db_url, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    served = Server(
        base_url=f"http://127.0.0.1:{port}",
        db_url=db_url,
        coordinator_token=printed["coordinator_token"],
        log_public_key=printed["log_public_key"],
        log_path=log_path,
    )
    try:
        _wait_until_up(served, process)
        yield served
    finally:
        served.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _wait_until_up(served: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"deconflict serve exited with {process.returncode}:\n{served.log_tail()}")
        try:
            if httpx.get(f"{served.base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"deconflict serve did not answer within 30 s:\n{served.log_tail()}")


# ---- the browser ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless. Skips when it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: Any, server: Server) -> Iterator[Any]:
    """A factory of pages, each in its own context (own sessionStorage), on the server.

    Every page fails the test at teardown if it raised an uncaught JavaScript error or
    asked for anything outside the server: the page must work with no internet.
    """
    contexts: list[Any] = []
    errors: list[str] = []

    def make() -> Any:
        context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(15_000)
        contexts.append(context)

        def outside(route: Any) -> None:
            url = route.request.url
            if url.startswith(server.base_url):
                route.continue_()
            else:
                errors.append(f"request outside the server: {url}")
                route.abort()

        context.route("**/*", outside)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, "\n".join(errors)


@pytest.fixture
def log_in(server: Server) -> Any:
    """Open the page and log in with a token; wait until the declarations are loaded."""

    def log_in(page: Any, token: str) -> None:
        page.goto(server.base_url + "/")
        page.fill("#login-token", token)
        page.click("#login-submit")
        page.wait_for_selector("#app:not([hidden])")
        page.wait_for_selector("body[data-loaded='true']")

    return log_in
