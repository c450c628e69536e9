"""Where webhooks may point: public addresses only by default, every spelling of a local
address refused at registration, an allow-list for deployments with an internal receiver."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from deconflict.api.app import create_app
from deconflict.service.webhook_targets import Allowed, Refused, parse
from deconflict.settings import Settings
from support import FakeClock, Service, make_service, problem_of


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    """The shared service with the default settings, whatever the environment says; on
    SQLite only, as what is checked here is the URL, not how a party is stored."""
    monkeypatch.delenv("DECONFLICT_WEBHOOK_ALLOW", raising=False)
    monkeypatch.delenv("DECONFLICT_WEBHOOK_ALLOW_PRIVATE", raising=False)
    yield from make_service(tmp_path, clock)


REFUSED = [
    pytest.param("http://127.0.0.1/hook", "127.0.0.1 is not a public address", id="loopback"),
    pytest.param("http://127.0.0.2:8080/", "127.0.0.2 is not a public address", id="loopback-8"),
    pytest.param("http://10.0.0.1/", "10.0.0.1 is not a public address", id="private-10"),
    pytest.param("http://172.16.5.4/", "172.16.5.4 is not a public address", id="private-172"),
    pytest.param("http://192.168.1.1/", "192.168.1.1 is not a public address", id="private-192"),
    pytest.param("http://100.64.0.1/", "100.64.0.1 is not a public address", id="shared-cgnat"),
    pytest.param(
        "http://169.254.169.254/latest/meta-data/",
        "169.254.169.254 is not a public address",
        id="link-local-metadata",
    ),
    pytest.param("http://0.0.0.0/", "0.0.0.0 is not a public address", id="unspecified"),
    pytest.param("http://224.0.0.1/", "224.0.0.1 is not a public address", id="multicast"),
    pytest.param("http://240.0.0.1/", "240.0.0.1 is not a public address", id="reserved"),
    pytest.param("http://192.0.2.1/", "192.0.2.1 is not a public address", id="documentation"),
    pytest.param(
        "http://255.255.255.255/", "255.255.255.255 is not a public address", id="broadcast"
    ),
    pytest.param("http://[::1]/", "::1 is not a public address", id="ipv6-loopback"),
    pytest.param("http://[::]:80/", ":: is not a public address", id="ipv6-unspecified"),
    pytest.param("http://[fe80::1]/", "fe80::1 is not a public address", id="ipv6-link-local"),
    pytest.param("http://[fd00::1]/", "fd00::1 is not a public address", id="ipv6-unique-local"),
    pytest.param("http://[fec0::1]/", "fec0::1 is not a public address", id="ipv6-site-local"),
    pytest.param("http://[ff02::1]/", "ff02::1 is not a public address", id="ipv6-multicast"),
    pytest.param(
        "http://[::ffff:127.0.0.1]/",
        "::ffff:7f00:1 is not a public address",
        id="ipv4-mapped-dotted",
    ),
    pytest.param(
        "http://[::ffff:a00:1]/", "::ffff:a00:1 is not a public address", id="ipv4-mapped-hex"
    ),
    pytest.param(
        "http://[2002:7f00:1::]/", "2002:7f00:1:: is not a public address", id="6to4-loopback"
    ),
    pytest.param(
        "http://[64:ff9b::a9fe:a9fe]/",
        "64:ff9b::a9fe:a9fe is not a public address",
        id="nat64-metadata",
    ),
    pytest.param(
        "http://[fe80::1%25eth0]/",
        "a webhook URL may not hold an IPv6 zone identifier",
        id="ipv6-zone",
    ),
    pytest.param(
        "http://127.1/", "127.1 is the address 127.0.0.1, which is not a public address", id="short"
    ),
    pytest.param(
        "http://127.0.1/",
        "127.0.1 is the address 127.0.0.1, which is not a public address",
        id="short-3",
    ),
    pytest.param(
        "http://2130706433/",
        "2130706433 is the address 127.0.0.1, which is not a public address",
        id="decimal",
    ),
    pytest.param(
        "http://0x7f000001/",
        "0x7f000001 is the address 127.0.0.1, which is not a public address",
        id="hex",
    ),
    pytest.param(
        "http://0X7F000001/",
        "0x7f000001 is the address 127.0.0.1, which is not a public address",
        id="hex-upper",
    ),
    pytest.param(
        "http://017700000001/",
        "017700000001 is the address 127.0.0.1, which is not a public address",
        id="octal",
    ),
    pytest.param(
        "http://0177.0.0.1/",
        "0177.0.0.1 is the address 127.0.0.1, which is not a public address",
        id="octal-dotted",
    ),
    pytest.param(
        "http://0x7f.1/",
        "0x7f.1 is the address 127.0.0.1, which is not a public address",
        id="hex-short",
    ),
    pytest.param(
        "http://0xa9.0xfe.0xa9.0xfe/",
        "0xa9.0xfe.0xa9.0xfe is the address 169.254.169.254, which is not a public address",
        id="hex-dotted-metadata",
    ),
    pytest.param("http://127.0.0.1./", "127.0.0.1 is not a public address", id="trailing-dot"),
    pytest.param(
        "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",
        "127.0.0.1 is not a public address",
        id="fullwidth-digits",
    ),
    pytest.param(
        "http://134744072/",
        "write an IPv4 address as four decimal numbers (8.8.8.8), not 134744072",
        id="decimal-public",
    ),
    pytest.param(
        "http://localhost/", "localhost names this machine or its local network", id="localhost"
    ),
    pytest.param(
        "http://LOCALHOST.:9000/",
        "localhost names this machine or its local network",
        id="localhost-upper-dot",
    ),
    pytest.param(
        "http://api.localhost/",
        "api.localhost names this machine or its local network",
        id="localhost-sub",
    ),
    pytest.param(
        "http://localhost.localdomain/",
        "localhost.localdomain names this machine or its local network",
        id="localdomain",
    ),
    pytest.param(
        "http://ip6-localhost/",
        "ip6-localhost names this machine or its local network",
        id="ip6-localhost",
    ),
    pytest.param(
        "http://printer.local/",
        "printer.local names this machine or its local network",
        id="mdns",
    ),
    pytest.param(
        "http://metadata.google.internal/computeMetadata/v1/",
        "metadata.google.internal names this machine or its local network",
        id="internal",
    ),
    pytest.param(
        "http://intranet/",
        "intranet is a one-label name, which resolves inside the local network",
        id="one-label",
    ),
    pytest.param(
        "http://example.123/",
        "example.123 is not a valid host name: its last label is a number",
        id="numeric-tld",
    ),
    pytest.param(
        "http://0x.0x.0x.0x/",
        "0x.0x.0x.0x is not a valid host name: its last label is a number",
        id="hex-tld",
    ),
    pytest.param(
        "http://exa mple.org/", "exa mple.org is not a valid host name", id="space-in-name"
    ),
    pytest.param(
        "ftp://example.org/x",
        "a webhook URL is an absolute http:// or https:// URL",
        id="ftp",
    ),
    pytest.param(
        "file:///etc/passwd", "a webhook URL is an absolute http:// or https:// URL", id="file"
    ),
    pytest.param(
        "gopher://example.org:70/",
        "a webhook URL is an absolute http:// or https:// URL",
        id="gopher",
    ),
    pytest.param("/hook", "a webhook URL is an absolute http:// or https:// URL", id="relative"),
    pytest.param("", "a webhook URL is an absolute http:// or https:// URL", id="empty"),
    pytest.param(
        "http://[::1/", "a webhook URL is an absolute http:// or https:// URL", id="bracket"
    ),
    pytest.param(
        "http://example.org:80:80/",
        "a webhook URL's port is a number from 1 to 65535",
        id="port-twice",
    ),
    pytest.param(
        "http://user:secret@example.org/",
        "a webhook URL may not hold a user name or password",
        id="userinfo",
    ),
    pytest.param(
        "http://example.org@127.0.0.1/",
        "a webhook URL may not hold a user name or password",
        id="userinfo-host-confusion",
    ),
    pytest.param(
        "http://example.org:99999/",
        "a webhook URL's port is a number from 1 to 65535",
        id="port-out-of-range",
    ),
    pytest.param(
        "http://example.org:0/",
        "a webhook URL's port is a number from 1 to 65535",
        id="port-zero",
    ),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_registration_refuses_the_url(service: Service, url: str, reason: str) -> None:
    answer = service.coordinator.post(
        "/v1/parties", {"name": "Air Force", "role": "operator", "webhook_url": url}
    )
    assert answer.status_code == 400, answer.text
    assert problem_of(answer)["errors"] == [{"field": "webhook_url", "message": reason}]
    names = [p["name"] for p in service.coordinator.get("/v1/parties").json()["parties"]]
    assert "Air Force" not in names


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_setting_a_webhook_refuses_the_url(service: Service, url: str, reason: str) -> None:
    operator = service.register("Air Force", "operator")
    answer = operator.put("/v1/me/webhook", {"url": url})
    assert answer.status_code == 400, answer.text
    assert problem_of(answer)["errors"] == [{"field": "url", "message": reason}]


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://hooks.example.org/deconflict?party=7", id="name"),
        pytest.param("https://B\u00fccher.example/hook", id="idn"),
        pytest.param("http://8.8.8.8:8080/hook", id="public-ipv4"),
        pytest.param("http://[2606:4700:4700::1111]/hook", id="public-ipv6"),
        pytest.param("https://hooks.example.org./hook", id="trailing-dot"),
    ],
)
def test_public_urls_are_accepted(service: Service, url: str) -> None:
    """Names are not resolved at registration (DNS can change): at every delivery."""
    answer = service.coordinator.post(
        "/v1/parties", {"name": "Air Force", "role": "operator", "webhook_url": url}
    )
    assert answer.status_code == 201, answer.text
    assert len(answer.json()["webhook_secret"]) == 64


def _client(service: Service, **settings: object) -> TestClient:
    app = create_app(
        service.deployment,
        settings=replace(Settings.from_environment(), **settings),  # type: ignore[arg-type]
        webhooks=False,
    )
    return TestClient(app)


def _register(client: TestClient, service: Service, url: str) -> int:
    answer = client.post(
        "/v1/parties",
        json={"name": "Air Force", "role": "operator", "webhook_url": url},
        headers=service.coordinator.headers,
    )
    return answer.status_code


@pytest.mark.parametrize(
    ("allow", "url", "status"),
    [
        pytest.param("127.0.0.1", "http://127.0.0.1:8123/hook", 201, id="address"),
        pytest.param("127.0.0.1", "http://[::ffff:127.0.0.1]:8123/", 201, id="address-mapped"),
        pytest.param("127.0.0.1", "http://127.0.0.2/", 400, id="address-other"),
        pytest.param("127.0.0.1", "http://127.1/", 400, id="address-short-form"),
        pytest.param("127.0.0.1", "http://10.0.0.1/", 400, id="address-private"),
        pytest.param("127.0.0.1", "http://[::1]/", 400, id="address-ipv6"),
        pytest.param("127.0.0.1", "http://localhost/", 400, id="address-not-name"),
        pytest.param("10.1.0.0/16, ::1", "http://10.1.200.3/", 201, id="cidr"),
        pytest.param("10.1.0.0/16, ::1", "http://10.2.0.1/", 400, id="cidr-outside"),
        pytest.param("10.1.0.0/16, ::1", "http://[::1]:9/", 201, id="cidr-ipv6"),
        pytest.param("0.0.0.0/0", "http://0.0.0.0/", 400, id="never-unspecified"),
        pytest.param("localhost", "http://localhost:8123/", 201, id="name"),
        pytest.param("receiver", "http://receiver:8123/", 201, id="one-label-name"),
        pytest.param("*.corp.example", "http://hooks.corp.example/", 201, id="wildcard"),
        pytest.param("*.corp.example", "http://corp.example.org/", 201, id="unlisted-public-name"),
        pytest.param("*.corp.example", "http://hooks.local/", 400, id="wildcard-other"),
    ],
)
def test_the_allow_list_lets_through_what_it_names(
    service: Service, allow: str, url: str, status: int
) -> None:
    with _client(service, webhook_allow=allow) as client:
        assert _register(client, service, url) == status


def test_allow_private_still_allows_every_local_address(service: Service) -> None:
    with _client(service, webhook_allow_private=True) as client:
        assert _register(client, service, "http://10.0.0.1/") == 201
        assert _register(client, service, "http://[::1]:8080/") == 201
        assert _register(client, service, "http://0.0.0.0/") == 400


@pytest.mark.parametrize(
    "entry", ["10.0.0.0/33", "not a name", "exa_mple..org", "http://10.0.0.1/", "2130706433"]
)
def test_a_malformed_allow_list_stops_the_service_from_starting(
    service: Service, entry: str
) -> None:
    with pytest.raises(ValueError, match="DECONFLICT_WEBHOOK_ALLOW"):
        _client(service, webhook_allow=f"127.0.0.1,{entry}")


def test_parse_keeps_what_delivery_needs() -> None:
    target = parse("https://Hooks.Example.org:8443/a b?x=1#frag", Allowed())
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.org", 8443)
    assert target.path == "/a b?x=1"
    assert target.host_header == "hooks.example.org:8443"
    assert parse("https://[2606:4700::1]/", Allowed()).host_header == "[2606:4700::1]"
    with pytest.raises(Refused):
        parse("http://10.0.0.1/", Allowed())


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.builds(lambda host: f"http://{host}/hook", st.text()),
        st.builds(
            lambda host, port: f"https://{host}:{port}/",
            st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
            st.text(max_size=8),
        ),
    )
)
def test_any_text_is_a_target_or_a_reason(url: str) -> None:
    """Hostile URLs (odd Unicode, brackets, surrogates, huge ports) are a 400, never a 500."""
    try:
        parse(url, Allowed())
    except Refused as refused:
        assert refused.reason
