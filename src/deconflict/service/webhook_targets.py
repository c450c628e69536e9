"""Where a webhook may be sent: to public addresses only, unless the deployment allows more.

A party chooses its webhook URL, so without a rule the service would POST, signed, wherever a
party points it: the service's own loopback, the private network behind it, a cloud metadata
address (server-side request forgery). A URL is checked when it is set, for what the URL
itself says (literal addresses in every spelling the system resolver accepts, local names),
and again at every delivery after resolving the name: every address the name resolves to must
be allowed, and the delivery connects to an address that was checked, so a name cannot answer
a public address to the check and a private one to the connection (DNS rebinding).

Deployments with an internal receiver allow its networks or names explicitly
(``DECONFLICT_WEBHOOK_ALLOW``).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

import idna

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# Names that mean this machine or the local network whatever DNS says (RFC 6761, 6762, 8375,
# and the names Linux distributions put in /etc/hosts).
LOCAL_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "localhost6"}
)
LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")
_BROADCAST = IPv4Address("255.255.255.255")


class Refused(Exception):
    """A webhook URL or address the deployment does not send to; the message says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _never(address: Address) -> bool:
    """Addresses that are no destination at all, allowed or not (0.0.0.0 reaches this host)."""
    return address.is_unspecified or address.is_multicast or address == _BROADCAST


def _embedded(address: IPv6Address) -> list[IPv4Address]:
    """IPv4 addresses an IPv6 address carries: a route to either reaches the IPv4 one."""
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    return [a for a in found if a is not None]


def is_public(address: Address) -> bool:
    """Globally routable, and none of loopback, private, link-local, reserved, multicast or
    unspecified (``is_global`` alone lets multicast and IPv6 site-local through)."""
    if (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    ):
        return False
    if isinstance(address, IPv6Address):
        return not address.is_site_local and all(is_public(a) for a in _embedded(address))
    return True


@dataclass(frozen=True)
class Allowed:
    """What a deployment sends webhooks to beyond public addresses."""

    networks: tuple[Network, ...] = ()
    hosts: tuple[str, ...] = ()  # exact names, or "*.suffix" for every name under it
    private: bool = False  # DECONFLICT_WEBHOOK_ALLOW_PRIVATE=1: every non-public address

    @classmethod
    def parse(cls, entries: str, *, private: bool = False) -> Allowed:
        """``DECONFLICT_WEBHOOK_ALLOW``: comma-separated networks (CIDR or single addresses)
        and host names; anything else is an error at start-up, not a silent no-op."""
        networks: list[Network] = []
        hosts: list[str] = []
        for entry in (e.strip().lower() for e in entries.split(",")):
            if not entry:
                continue
            try:
                networks.append(ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.removeprefix("*.")
            if not _is_name(name) or _NUMBER.fullmatch(name.rsplit(".", 1)[-1]):
                raise ValueError(
                    f"DECONFLICT_WEBHOOK_ALLOW: {entry!r} is neither a network nor a host name"
                )
            hosts.append(entry)
        return cls(tuple(networks), tuple(hosts), private)

    def address(self, address: Address) -> bool:
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if _never(address):
            return False
        if self.private or any(address in network for network in self.networks):
            return True
        return is_public(address)

    def host(self, name: str) -> bool:
        return any(
            name == entry or (entry.startswith("*.") and name.endswith(entry[1:]))
            for entry in self.hosts
        )


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart: where to connect and what to say the host is."""

    scheme: str
    host: str  # ASCII and lower case: the Host header, and the name TLS verifies
    port: int
    path: str  # path and query, as the party wrote them
    literal: Address | None = field(default=None)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _is_name(name: str) -> bool:
    labels = name.split(".")
    return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _ipv4(host: str) -> IPv4Address | None:
    """The IPv4 address a host is, in any spelling the system's resolver takes as one:
    ``127.1``, ``2130706433``, ``0x7f000001``, ``017700000001``, ``0177.0.0.1`` (inet_aton
    is the parser getaddrinfo itself uses for numeric hosts)."""
    try:
        return IPv4Address(host)
    except ValueError:
        pass
    try:
        return IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _literal(host: str, bracketed: bool) -> tuple[str, Address | None]:
    """The host in ASCII, and the address when the host is one."""
    if bracketed:
        if "%" in host:
            raise Refused("a webhook URL may not hold an IPv6 zone identifier")
        try:
            v6 = IPv6Address(host)
        except ValueError:
            raise Refused(f"{host} is not an IPv6 address") from None
        return str(v6), v6
    host = host.removesuffix(".")
    if not host.isascii():
        # Mapped the way browsers and resolvers map them: fullwidth digits become an address.
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise Refused(f"{host} is not a valid host name") from None
    v4 = _ipv4(host)
    if v4 is not None and str(v4) != host:
        if not is_public(v4):
            raise Refused(f"{host} is the address {v4}, which is not a public address")
        raise Refused(f"write an IPv4 address as four decimal numbers ({v4}), not {host}")
    return host, v4


def _check_name(host: str, allowed: Allowed) -> None:
    if not _is_name(host):
        raise Refused(f"{host} is not a valid host name")
    if _NUMBER.fullmatch(host.rsplit(".", 1)[-1]):
        # URL parsers (WHATWG) read such a host as an IPv4 address, resolvers as a name.
        raise Refused(f"{host} is not a valid host name: its last label is a number")
    if allowed.host(host):
        return
    if host in LOCAL_NAMES or host.endswith(LOCAL_SUFFIXES):
        raise Refused(f"{host} names this machine or its local network")
    if "." not in host:
        raise Refused(f"{host} is a one-label name, which resolves inside the local network")


def parse(url: str, allowed: Allowed) -> Target:
    """Check what a webhook URL says about where it goes; names are resolved by `resolve`."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # an unbalanced bracket, or a netloc that NFKC turns into another
        raise Refused("a webhook URL is an absolute http:// or https:// URL") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise Refused("a webhook URL is an absolute http:// or https:// URL")
    if "@" in parts.netloc:
        raise Refused("a webhook URL may not hold a user name or password")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise Refused("a webhook URL's port is a number from 1 to 65535")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    host, literal = _literal(hostname, parts.netloc.startswith("["))
    if literal is not None:
        if not allowed.address(literal):
            raise Refused(f"{literal} is not a public address")
    else:
        _check_name(host, allowed)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, literal)


def resolve(target: Target, allowed: Allowed) -> list[Address]:
    """Every address the target's host has, each checked; raises Refused when one is not
    allowed (a name with one private address among public ones is refused whole), OSError
    when the name does not resolve (a transient failure, retried)."""
    if target.literal is not None:
        return [target.literal]
    addresses: list[Address] = []
    for *_, sockaddr in socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM):
        address = ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    trusted = allowed.host(target.host)
    for address in addresses:
        if _never(address) or not (trusted or allowed.address(address)):
            raise Refused(f"{target.host} resolves to {address}, which is not a public address")
    return addresses
