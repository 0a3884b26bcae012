"""Where outbound calls to user-given URLs may go: never to this machine or the networks behind
it (server-side request forgery), unless the installation allows it.

Refused: loopback, link-local, private, multicast, unspecified and reserved addresses and
anything else that is not globally routable, in IPv4 and IPv6, including IPv4 carried inside
IPv6 (IPv4-mapped `::ffff:a.b.c.d`, 6to4, Teredo, NAT64 `64:ff9b::/96`). A name is resolved
once, every address it resolves to is checked, and the call connects to the checked address
(the name stays in the Host header and TLS SNI), so a DNS answer that changes between the check
and the connection cannot smuggle a private address in.

`literal_problem` is the static part, for a URL given in a definition (no DNS): a literal
address (also the old forms `127.1`, `0x7f.1`, `2130706433`) or `localhost`. `pin` is the run
time part.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]  # socket.getaddrinfo's shape

NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class BlockedAddress(ValueError):
    """The URL leads to an address outbound calls may not reach; the message says which kind
    (never the address or the URL: they may be sensitive)."""


class Unresolvable(OSError):
    """The URL's host name does not resolve (now): worth trying again later."""


def _kind(ip: IPAddress) -> str | None:
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in net for net in NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _an(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def blocked_kind(ip: IPAddress) -> str | None:
    """Why `ip` may not be called ("loopback", "private", ...), or None if it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(ip):
            kind = _kind(inner)
            if kind is not None:
                return f"{kind} (IPv4 inside IPv6)"
        if ip.scope_id:
            return "link-local"
    return _kind(ip)


def parse_ip(host: str) -> IPAddress | None:
    """`host` as an address if it is one, in any notation a resolver would accept (including
    the old IPv4 forms `127.1`, `0x7f.0.0.1` and `2130706433`); None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _is_localhost(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def literal_problem(url: str) -> str | None:
    """What is wrong with `url` as a target, judged without DNS: its host is a refused
    address or `localhost`. None when nothing is (a name is judged at call time)."""
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        return "is not a valid URL"
    if not host:
        return "has no host"
    if _is_localhost(host):
        return "points at this machine (localhost)"
    ip = parse_ip(host)
    kind = blocked_kind(ip) if ip is not None else None
    if kind is not None:
        return f"points at {_an(kind)} address"
    return None


@dataclass(frozen=True)
class Pinned:
    """A request to a checked address: `url` has the address as its host, `headers` and
    `extensions` keep the original name for the Host header and TLS (SNI and the certificate
    check)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def pin(url: str, *, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo) -> Pinned:
    """Resolve `url`'s host once, refuse it if any address is refused (`BlockedAddress`;
    nothing is refused with `allow_private`), and point the request at the first address.
    `Unresolvable` if the name does not resolve."""
    parsed = httpx.URL(url)
    host = parsed.raw_host.decode("ascii")  # IDNA-encoded, no brackets
    if _is_localhost(host) and not allow_private:
        raise BlockedAddress("the URL points at this machine (localhost)")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    literal = parse_ip(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = resolve(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Unresolvable(f"the URL's host does not resolve ({type(exc).__name__})") from None
        addresses = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]))
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise Unresolvable("the URL's host resolves to no address")
    for ip in addresses:
        kind = None if allow_private else blocked_kind(ip)
        if kind is not None:
            raise BlockedAddress(f"the URL leads to {_an(kind)} address")
    if literal is not None:  # written as an address: normalised, nothing to keep
        return Pinned(url=str(parsed.copy_with(host=str(literal))))
    target = parsed.copy_with(host=str(addresses[0]))
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return Pinned(
        url=str(target), headers={"Host": parsed.netloc.decode("ascii")}, extensions=extensions
    )
