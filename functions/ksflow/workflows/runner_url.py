"""Runner URLs: only public HTTPS endpoints, so the service cannot be aimed at its own network.

Checked when a definition is written, and again before each dispatch attempt, which then
connects to exactly the address that was checked (`pin`): a name that resolves to a public
address for the check and to an internal one for the connection (DNS rebinding) gets
nowhere.

Only globally routable unicast addresses pass. IPv6 forms that carry an IPv4 address
(IPv4-mapped, 6to4, NAT64, Teredo) are judged by that IPv4 address, because that is where
the traffic ends up.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IANA special-purpose blocks that some Python versions count as global: protocol
# assignments and anycast (192.0.0.0/24) and the retired 6to4 relay anycast (192.88.99.0/24).
_SPECIAL_PURPOSE_IPV4 = (ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv4Network("192.88.99.0/24"))
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the local translator's
# prefix length, so no embedded address can be trusted and the whole block is refused.
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


class UnsafeRunnerUrl(ValueError):
    """The URL is malformed or points somewhere the service must not call."""


class UnresolvedRunnerHost(UnsafeRunnerUrl):
    """The runner's host name did not resolve: at dispatch, a network error worth retrying."""


@dataclass(frozen=True)
class PinnedUrl:
    """A checked runner URL and the one address a dispatch connects to.

    TLS is verified, and SNI sent, for `host` (the URL's host name), not for `address`.
    """

    scheme: str
    host: str
    port: int
    address: str
    host_header: str
    request_target: str


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address delivers to (empty for plain IPv6)."""
    if address.ipv4_mapped:
        return (address.ipv4_mapped,)
    if address.sixtofour:
        return (address.sixtofour,)
    if address.teredo:
        return address.teredo  # the Teredo server and the (de-obfuscated) client
    if address in _NAT64_WELL_KNOWN:
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    return ()


def globally_routable(address: IPAddress) -> bool:
    """True for a globally routable unicast address, judging IPv4-carrying IPv6 by its IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL_USE:
            return False
        embedded = _embedded_ipv4(address)
        if embedded:
            return all(globally_routable(ipv4) for ipv4 in embedded)
        if address.is_site_local:
            return False
    elif any(address in network for network in _SPECIAL_PURPOSE_IPV4):
        return False
    return address.is_global and not (address.is_multicast or address.is_reserved)


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return [literal]


def _checked(url: str, *, allow_loopback: bool, require_resolution: bool) -> tuple[SplitResult, int, list[IPAddress]]:
    """The URL's parts, its port and every address its host resolves to, all of them checked."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise UnsafeRunnerUrl(f"Runner URL is not a valid URI: {error}") from error
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host or any(c.isspace() for c in url):
        raise UnsafeRunnerUrl("Runner URL must be an absolute https:// URI")
    if parts.username or parts.password:
        raise UnsafeRunnerUrl("Runner URL must not contain credentials")
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError) as error:
        if require_resolution:
            raise UnresolvedRunnerHost(f"Runner host {host!r} could not be resolved: {error}") from error
        addresses = []
    if allow_loopback and addresses and all(a.is_loopback for a in addresses):
        return parts, port, addresses
    if parts.scheme != "https":
        raise UnsafeRunnerUrl("Runner URL must use https")
    blocked = [str(a) for a in addresses if not globally_routable(a)]
    if blocked:
        raise UnsafeRunnerUrl(f"Runner URL resolves to {blocked[0]}, which is not a globally routable "
                              "unicast address (loopback, private, link-local, metadata or reserved)")
    return parts, port, addresses


def check(url: str, *, allow_loopback: bool, require_resolution: bool) -> None:
    """Raise UnsafeRunnerUrl unless `url` is an acceptable runner endpoint.

    A host that does not resolve yet is accepted when a definition is saved (the runner may
    not be deployed) and refused when resolution is required.
    """
    _checked(url, allow_loopback=allow_loopback, require_resolution=require_resolution)


def pin(url: str, *, allow_loopback: bool) -> PinnedUrl:
    """Resolve once, check every address, and pin the first: the only address to connect to."""
    parts, port, addresses = _checked(url, allow_loopback=allow_loopback, require_resolution=True)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return PinnedUrl(scheme=parts.scheme, host=parts.hostname or "", port=port, address=str(addresses[0]),
                     host_header=parts.netloc, request_target=target)
