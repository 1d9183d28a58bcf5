"""Runner URLs: public https endpoints only, so the service cannot be aimed at its own network.

No test here depends on real DNS succeeding: hosts are IP literals, numeric forms the
resolver parses locally, `localhost`, or names under the reserved `.invalid` TLD.
"""

from __future__ import annotations

import re

import pytest

from ksflow.workflows.runner_url import UnsafeRunnerUrl, check

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
