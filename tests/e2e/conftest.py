"""Fixtures for the end-to-end tests of the web page: a real ``deconflict serve`` on a
fresh SQLite database (see webpage_server), and Debian's headless Chromium driven by
Playwright, never a browser downloaded by ``playwright install``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from webpage_server import Server, ServerFailed, running_server

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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scenario(path): load this scenario file into the test's deployment"
    )


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A fresh deployment served on a free local port, stopped after the test. A test
    marked ``@pytest.mark.scenario(path)`` gets that scenario loaded first."""
    marker = request.node.get_closest_marker("scenario")
    scenario = Path(marker.args[0]) if marker else None
    try:
        with running_server(tmp_path, scenario=scenario) as served:
            yield served
    except ServerFailed as exc:
        pytest.fail(str(exc))


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
def new_page(browser: Any, server: Server) -> Iterator[Callable[[], Any]]:
    """A factory of pages, each in its own context (so its own sessionStorage).

    At teardown the test fails if a page raised an uncaught JavaScript error or asked for
    anything outside the server: the page must work with no internet.
    """
    contexts: list[Any] = []
    errors: list[str] = []

    def make() -> Any:
        context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(15_000)
        contexts.append(context)

        def only_the_server(route: Any) -> None:
            url = route.request.url
            if url.startswith(server.base_url + "/"):
                route.continue_()
            else:
                errors.append(f"request outside the server: {url}")
                route.abort()

        context.route("**/*", only_the_server)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, "\n".join(errors)


@pytest.fixture
def log_in(server: Server) -> Callable[[Any, str], None]:
    """Open the page and log in with a token; wait until the declarations are loaded."""

    def log_in(page: Any, token: str) -> None:
        page.goto(server.base_url + "/")
        page.fill("#login-token", token)
        page.click("#login-submit")
        page.wait_for_selector("#app:not([hidden])")
        page.wait_for_selector("body[data-loaded='true']")

    return log_in
