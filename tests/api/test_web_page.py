"""The web page is served with its assets, offline, under a strict content security policy."""

from __future__ import annotations

import re

from deconflict.api.web import content_security_policy
from support import Service


def test_page_and_assets_are_served_locally(service: Service) -> None:
    page = service.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert assets, "the page references its scripts and styles"
    for asset in assets:
        assert service.client.get(asset).status_code == 200, asset
    # Nothing from elsewhere: no CDN, no fonts from the internet.
    assert not re.search(r'(?:src|href)="https?://', page.text)


def test_tile_server_is_allowed_for_images_only() -> None:
    csp = content_security_policy("https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://*.tile.example.org" in csp
    assert "connect-src 'self'" in csp


def test_api_answers_carry_no_page_headers(service: Service) -> None:
    assert "content-security-policy" not in service.client.get("/healthz").headers


def test_every_module_the_page_imports_is_served(service: Service) -> None:
    """The page's ES modules, followed from main.js through their imports: a module added
    to the page (alerts.js, respond.js, justification.js) must ship with it."""
    pending, seen = ["/static/js/main.js"], set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        answer = service.client.get(path)
        assert answer.status_code == 200, path
        for name in re.findall(r'^import [^;]*? from "\./([\w-]+\.js)";', answer.text, re.M | re.S):
            pending.append(f"/static/js/{name}")
    assert {"/static/js/alerts.js", "/static/js/respond.js", "/static/js/justification.js"} <= seen
