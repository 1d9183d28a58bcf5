"""Runner URLs: public https endpoints only, so the service cannot be aimed at its own network.

No test here depends on real DNS succeeding: hosts are IP literals, numeric forms the
resolver parses locally, `localhost`, or names under the reserved `.invalid` TLD.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from ksflow.workflows.runner_url import UnsafeRunnerUrl, check, pin

PUBLIC = "https://93.184.216.34/"


def accepted(url: str, *, allow_loopback: bool = False, require_resolution: bool = False) -> bool:
    try:
        check(url, allow_loopback=allow_loopback, require_resolution=require_resolution)
    except UnsafeRunnerUrl:
        return False
    return True


@pytest.mark.parametrize("url", [
    PUBLIC,
    "https://93.184.216.34:8443/hooks/run?tenant=a",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/run",
    "https://[::ffff:93.184.216.34]/",
    # IPv6 forms judged by the public IPv4 address they carry: 6to4, NAT64, Teredo (server and client)
    "https://[2002:5db8:d822::1]/",
    "https://[64:ff9b::5db8:d822]/",
    "https://[64:ff9b::93.184.216.34]/",
    "https://[2001:0:4136:e378:8000:63bf:a247:27dd]/",
])
@pytest.mark.parametrize("require_resolution", [False, True])
def test_https_to_a_public_ip_is_accepted(url: str, require_resolution: bool) -> None:
    assert accepted(url, require_resolution=require_resolution)


def test_public_ip_is_accepted_whether_or_not_loopback_is_allowed() -> None:
    assert accepted(PUBLIC, allow_loopback=True)


@pytest.mark.parametrize("allow_loopback", [False, True])
def test_plain_http_to_a_public_address_is_rejected(allow_loopback: bool) -> None:
    assert not accepted("http://93.184.216.34/", allow_loopback=allow_loopback)


def test_the_rejection_says_why() -> None:
    with pytest.raises(UnsafeRunnerUrl, match="https"):
        check("http://93.184.216.34/", allow_loopback=False, require_resolution=False)
    with pytest.raises(UnsafeRunnerUrl, match=re.escape("169.254.169.254")):
        check("https://169.254.169.254/", allow_loopback=False, require_resolution=False)
    with pytest.raises(UnsafeRunnerUrl, match=re.escape("2002:a9fe:a9fe::1, which is not a globally routable")):
        check("https://[2002:a9fe:a9fe::1]/", allow_loopback=False, require_resolution=False)


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/",
    "https://127.8.9.10:8443/",
    "https://[::1]/",
    "https://localhost/",
    "http://127.0.0.1:8001/",
    "http://[::1]:8001/",
    "http://localhost:8001/",
])
def test_loopback_is_rejected_unless_allowed(url: str) -> None:
    assert not accepted(url, allow_loopback=False)
    assert accepted(url, allow_loopback=True)


@pytest.mark.parametrize("url", [
    # private
    "https://10.0.0.1/", "https://10.255.255.254/", "https://192.168.1.10/", "https://172.16.0.1/",
    "https://172.31.255.255/", "https://[fd00::1]/", "https://[fc00::abcd]/",
    # link-local and cloud metadata
    "https://169.254.169.254/", "https://169.254.169.254/latest/meta-data/", "https://169.254.0.1/",
    "https://[fe80::1]/", "https://[fd00:ec2::254]/", "https://100.100.100.200/",
    # IPv4-mapped IPv6 forms of forbidden addresses
    "https://[::ffff:127.0.0.1]/", "https://[::ffff:10.0.0.1]/", "https://[::ffff:169.254.169.254]/",
    "https://[::ffff:192.168.0.1]/", "https://[::ffff:a9fe:a9fe]/",
    # carrier-grade NAT, unspecified, multicast, broadcast
    "https://100.64.0.1/", "https://0.0.0.0/", "https://[::]/", "https://224.0.0.1/",
    "https://255.255.255.255/",
])
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_internal_addresses_are_rejected_even_when_loopback_is_allowed(url: str, allow_loopback: bool) -> None:
    assert not accepted(url, allow_loopback=allow_loopback)


@pytest.mark.parametrize("url", [
    # special-purpose IPv4 blocks: shared (CGNAT), benchmarking, IETF protocol assignments, reserved,
    # documentation, the retired 6to4 relay anycast, multicast
    "https://100.64.0.1/", "https://100.127.255.254/", "https://198.18.0.1/", "https://198.19.255.254/",
    "https://192.0.0.1/", "https://192.0.0.9/", "https://192.0.0.170/", "https://240.0.0.1/",
    "https://255.255.255.254/", "https://192.0.2.1/", "https://198.51.100.7/", "https://203.0.113.9/",
    "https://192.88.99.1/", "https://233.252.0.1/", "https://239.255.255.250/",
    # 6to4 wrapping metadata, loopback and private addresses
    "https://[2002:a9fe:a9fe::1]/", "https://[2002:7f00:1::]/", "https://[2002:a00:1::1]/",
    "https://[2002:6440:1::1]/",
    # NAT64 (well-known prefix) of internal addresses; the local-use NAT64 prefix, whatever it carries
    "https://[64:ff9b::a9fe:a9fe]/", "https://[64:ff9b::10.0.0.1]/", "https://[64:ff9b::127.0.0.1]/",
    "https://[64:ff9b::100.64.0.1]/", "https://[64:ff9b:1::a9fe:a9fe]/", "https://[64:ff9b:1::5db8:d822]/",
    # Teredo with an internal server or client
    "https://[2001:0:a9fe:a9fe:8000:63bf:a247:27dd]/", "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
    # IPv4-mapped forms of the special-purpose blocks
    "https://[::ffff:100.64.0.1]/", "https://[::ffff:198.18.0.1]/", "https://[::ffff:240.0.0.1]/",
    # IPv6 that is not global unicast: documentation, site-local, multicast, IPv4-compatible, SIIT, discard
    "https://[2001:db8::1]/", "https://[fec0::1]/", "https://[ff02::1]/", "https://[ff0e::1]/",
    "https://[::a9fe:a9fe]/", "https://[::ffff:0:a9fe:a9fe]/", "https://[100::1]/",
])
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_only_globally_routable_unicast_addresses_are_accepted(url: str, allow_loopback: bool) -> None:
    assert not accepted(url, allow_loopback=allow_loopback)


@pytest.mark.parametrize("url", [
    "https://2130706433/",  # 127.0.0.1 as one decimal number
    "https://0x7f000001/",
    "https://127.1/",
    "https://0177.0.0.1/",  # octal
    "https://2852039166/",  # 169.254.169.254
    "https://0xa9.0xfe.0xa9.0xfe/",
])
def test_numeric_spellings_of_internal_addresses_are_rejected(url: str) -> None:
    assert not accepted(url)
    assert not accepted(url, require_resolution=True)


def test_scoped_link_local_ipv6_is_rejected() -> None:
    assert not accepted("https://[fe80::1%25eth0]/")


def test_mixed_case_scheme_and_host_are_still_checked() -> None:
    assert not accepted("HTTPS://169.254.169.254/")
    assert accepted("HTTPS://93.184.216.34/")


@pytest.mark.parametrize("url", [
    "https://user:pass@93.184.216.34/",
    "https://user@93.184.216.34/",
    "https://:token@93.184.216.34/",
    "http://user:pass@127.0.0.1:8001/",
])
def test_credentials_in_the_url_are_rejected(url: str) -> None:
    assert not accepted(url, allow_loopback=True)


@pytest.mark.parametrize("url", [
    "", "not a url", "93.184.216.34", "//93.184.216.34/", "https://", "https:///path",
    "ftp://93.184.216.34/", "file:///etc/passwd", "gopher://93.184.216.34/", "javascript:alert(1)",
    "https://93.184.216.34:99999/", "https://93.184.216.34:port/", "https://93.184.216.34/ spaced",
    "https://[::1/", "https://93.184.216.34\n/",
])
def test_malformed_or_non_http_urls_are_rejected(url: str) -> None:
    assert not accepted(url, allow_loopback=True)


def test_unresolvable_host_is_accepted_when_resolution_is_not_required() -> None:
    """A definition may be saved before its runner is deployed."""
    assert accepted("https://runner.ksflow-test.invalid/hooks", require_resolution=False)


def test_unresolvable_host_is_rejected_when_resolution_is_required() -> None:
    with pytest.raises(UnsafeRunnerUrl, match="resolved"):
        check("https://runner.ksflow-test.invalid/hooks", allow_loopback=True, require_resolution=True)


def test_unresolvable_host_over_plain_http_is_still_rejected() -> None:
    assert not accepted("http://runner.ksflow-test.invalid/", allow_loopback=True, require_resolution=False)


def _answer(*addresses: str) -> Any:
    calls: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        calls.append(host)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]

    getaddrinfo.calls = calls  # type: ignore[attr-defined]
    return getaddrinfo


def test_pin_resolves_once_checks_every_address_and_pins_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = _answer("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    target = pin("https://Runner.Example.test:8443/hooks/run?tenant=a#part", allow_loopback=False)
    assert resolver.calls == ["runner.example.test"]
    assert (target.address, target.host, target.port) == ("93.184.216.34", "runner.example.test", 8443)
    assert (target.host_header, target.request_target) == ("Runner.Example.test:8443", "/hooks/run?tenant=a")


@pytest.mark.parametrize("allow_loopback", [False, True])
def test_a_name_resolving_to_a_public_and_an_internal_address_is_rejected(monkeypatch: pytest.MonkeyPatch,
                                                                          allow_loopback: bool) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _answer("93.184.216.34", "127.0.0.1"))
    with pytest.raises(UnsafeRunnerUrl, match=re.escape("127.0.0.1")):
        pin("https://runner.example.test/", allow_loopback=allow_loopback)


def test_a_name_resolving_only_to_loopback_is_pinned_when_loopback_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _answer("127.0.0.1"))
    assert pin("http://runner.example.test:8001/", allow_loopback=True).address == "127.0.0.1"
    with pytest.raises(UnsafeRunnerUrl):
        pin("http://runner.example.test:8001/", allow_loopback=False)
