"""Runner URLs: only public HTTPS endpoints, so the service cannot be aimed at its own network.

Checked when a definition is written and again right before each dispatch, because what
a name resolves to can change in between.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

# Cloud metadata endpoints that are not covered by the link-local and private ranges.
_METADATA_ADDRESSES = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


class UnsafeRunnerUrl(ValueError):
    """The URL is malformed or points somewhere the service must not call."""


def _is_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_loopback


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (address in _METADATA_ADDRESSES or address.is_private or address.is_link_local or address.is_loopback
            or address.is_multicast or address.is_reserved or address.is_unspecified
            or address in ipaddress.ip_network("100.64.0.0/10"))


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return [literal]


def check(url: str, *, allow_loopback: bool, require_resolution: bool) -> None:
    """Raise UnsafeRunnerUrl unless `url` is an acceptable runner endpoint.

    A host that does not resolve yet is accepted when a definition is saved (the runner may
    not be deployed) and refused at dispatch (`require_resolution`).
    """
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
            raise UnsafeRunnerUrl(f"Runner host {host!r} could not be resolved: {error}") from error
        addresses = []
    loopback_only = bool(addresses) and all(_is_loopback(a) for a in addresses)
    if allow_loopback and loopback_only:
        return
    if parts.scheme != "https":
        raise UnsafeRunnerUrl("Runner URL must use https")
    blocked = [str(a) for a in addresses if _forbidden(a)]
    if blocked:
        raise UnsafeRunnerUrl(
            f"Runner URL resolves to a loopback, private, link-local or metadata address ({blocked[0]})"
        )
