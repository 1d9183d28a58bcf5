"""Dispatch delivery: one attempt per call, to exactly the checked address, with TLS verified for the host name."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ksflow.orchestration import delivery
from ksflow.workflows import runner_url

RUNNER_HOST = "runner.ksflow.test"
PUBLIC_ADDRESS = "93.184.216.34"


class ScriptedRunner:
    """Answers each POST with the next status of its script (the last one repeats); HTTPS when given a TLS context."""

    def __init__(self, statuses: list[int], location: str | None = None, tls: ssl.SSLContext | None = None,
                 host: str = "127.0.0.1") -> None:
        self.statuses, self.location, self.attempts = statuses, location, 0
        self.host_headers: list[str] = []
        runner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = runner.statuses[min(runner.attempts, len(runner.statuses) - 1)]
                runner.attempts += 1
                runner.host_headers.append(self.headers.get("Host", ""))
                self.send_response(status)
                if runner.location:
                    self.send_header("Location", runner.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def runners() -> Iterator[list[ScriptedRunner]]:
    started: list[ScriptedRunner] = []
    yield started
    for runner in started:
        runner.close()


def _deliver(url: str, *, allow_loopback: bool = True) -> delivery.Outcome:
    return delivery.deliver(url, b"{}", {"Content-Type": "application/json"}, allow_loopback=allow_loopback)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_a_2xx_is_accepted_after_one_post(runners: list[ScriptedRunner], status: int) -> None:
    runners.append(runner := ScriptedRunner([status]))
    assert _deliver(runner.url) == delivery.Outcome(accepted=True, status=status)
    assert runner.attempts == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_retryable_answers_are_worth_another_attempt_and_name_the_status(runners: list[ScriptedRunner],
                                                                         status: int) -> None:
    runners.append(runner := ScriptedRunner([status]))
    outcome = _deliver(runner.url)
    assert not outcome.accepted and outcome.retryable and runner.attempts == 1
    assert (outcome.error, outcome.status) == (f"Runner answered HTTP {status}", status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_client_errors_are_final_and_name_the_status(runners: list[ScriptedRunner], status: int) -> None:
    runners.append(runner := ScriptedRunner([status]))
    outcome = _deliver(runner.url)
    assert not outcome.accepted and not outcome.retryable and runner.attempts == 1
    assert (outcome.error, outcome.status) == (f"Runner answered HTTP {status}", status)


def test_redirects_are_not_followed(runners: list[ScriptedRunner]) -> None:
    runners.append(target := ScriptedRunner([202]))
    runners.append(redirecting := ScriptedRunner([302], location=target.url))
    outcome = _deliver(redirecting.url)
    assert not outcome.accepted and not outcome.retryable and outcome.error == "Runner answered HTTP 302"
    assert target.attempts == 0


def test_network_errors_are_named_and_worth_another_attempt() -> None:
    outcome = _deliver(f"http://127.0.0.1:{_closed_port()}/")
    assert not outcome.accepted and outcome.retryable
    assert "Runner unreachable" in outcome.error and "NewConnectionError" in outcome.error


def test_a_refused_url_is_final_and_never_contacted(runners: list[ScriptedRunner]) -> None:
    runners.append(runner := ScriptedRunner([202]))
    outcome = _deliver(runner.url, allow_loopback=False)
    assert not outcome.accepted and not outcome.retryable
    assert outcome.error.startswith("Dispatch refused: ")
    assert runner.attempts == 0


def test_a_host_that_does_not_resolve_is_worth_another_attempt() -> None:
    outcome = _deliver("https://runner.ksflow-test.invalid/hook")
    assert not outcome.accepted and outcome.retryable
    assert "could not be resolved" in outcome.error


# --- Pinning the checked address (DNS rebinding), with TLS verified for the URL's host name ---


@dataclass
class Certificates:
    ca_file: Path
    runner: ssl.SSLContext
    other_name: ssl.SSLContext
    sni: list[str | None]


def _certificate(subject: str, key: Any, issuer: x509.Name, issuer_key: Any, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A private CA, and server contexts with its certificates for the runner's name and for another name."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ksflow test CA")])
    ca = _certificate("ksflow test CA", ca_key, ca_name, ca_key, ca=True)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    sni: list[str | None] = []

    def server_context(name: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = directory / f"{name}.pem"
        pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
                        + _certificate(name, key, ca_name, ca_key, ca=False).public_bytes(serialization.Encoding.PEM))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pem)
        context.sni_callback = lambda _socket, server_name, _context: sni.append(server_name)  # type: ignore[assignment]
        return context

    return Certificates(ca_file, server_context(RUNNER_HOST), server_context("other.ksflow.test"), sni)


@pytest.fixture
def trusted_ca(certificates: Certificates, monkeypatch: pytest.MonkeyPatch) -> Certificates:
    """The test CA is the one the system trusts (OpenSSL reads SSL_CERT_FILE when loading default certificates)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
    certificates.sni.clear()
    return certificates


Resolver = Callable[..., list[tuple[Any, ...]]]


def _resolver(answers: list[list[str]]) -> tuple[Resolver, list[str]]:
    """getaddrinfo whose answers for a name change from call to call (the last repeats); IPs resolve to themselves."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            asked.append(host)
            addresses = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port or 0)))
                for a in addresses]

    return getaddrinfo, asked


@pytest.fixture
def public_runner_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[ScriptedRunner], list[str]]:
    """Connections to PUBLIC_ADDRESS reach the given local runner; returns the addresses connected to."""
    connected: list[str] = []
    real_create_connection = urllib3.util.connection.create_connection

    def route(runner: ScriptedRunner) -> list[str]:
        def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            connected.append(address[0])
            if address[0] == PUBLIC_ADDRESS:
                address = ("127.0.0.1", runner.port)
            return real_create_connection(address, *args, **kwargs)

        monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
        return connected

    return route


def test_dns_rebinding_cannot_reach_loopback(runners: list[ScriptedRunner], trusted_ca: Certificates,
                                             public_runner_at: Callable[[ScriptedRunner], list[str]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The name answers a public address for the check and loopback for any later lookup."""
    runners.append(internal := ScriptedRunner([202], tls=trusted_ca.runner, host=RUNNER_HOST))
    runners.append(public := ScriptedRunner([202], tls=trusted_ca.runner))
    resolver, asked = _resolver([[PUBLIC_ADDRESS], ["127.0.0.1"]])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    connected = public_runner_at(public)

    outcome = _deliver(internal.url, allow_loopback=False)

    assert outcome.accepted
    assert internal.attempts == 0 and public.attempts == 1
    assert connected == [PUBLIC_ADDRESS] and asked == [RUNNER_HOST]
    assert public.host_headers == [f"{RUNNER_HOST}:{internal.port}"]
    assert trusted_ca.sni == [RUNNER_HOST]


def test_every_attempt_checks_the_address_again(runners: list[ScriptedRunner], trusted_ca: Certificates,
                                                public_runner_at: Callable[[ScriptedRunner], list[str]],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    runners.append(internal := ScriptedRunner([202], tls=trusted_ca.runner, host=RUNNER_HOST))
    runners.append(public := ScriptedRunner([503], tls=trusted_ca.runner))
    resolver, _ = _resolver([[PUBLIC_ADDRESS], ["127.0.0.1"]])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    public_runner_at(public)

    first, second = _deliver(internal.url, allow_loopback=False), _deliver(internal.url, allow_loopback=False)

    assert first.retryable and first.error == "Runner answered HTTP 503"
    assert not second.retryable and "127.0.0.1" in second.error
    assert internal.attempts == 0 and public.attempts == 1


def test_a_name_with_any_internal_address_is_refused(runners: list[ScriptedRunner], trusted_ca: Certificates,
                                                     public_runner_at: Callable[[ScriptedRunner], list[str]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    runners.append(internal := ScriptedRunner([202], tls=trusted_ca.runner, host=RUNNER_HOST))
    resolver, _ = _resolver([[PUBLIC_ADDRESS, "127.0.0.1"]])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    connected = public_runner_at(internal)

    outcome = _deliver(internal.url, allow_loopback=False)

    assert not outcome.accepted and outcome.error.startswith("Dispatch refused")
    assert connected == [] and internal.attempts == 0


def test_the_pinned_connection_verifies_tls_for_the_url_host_name() -> None:
    target = runner_url.pin(f"https://{PUBLIC_ADDRESS}:8443/hooks?x=1", allow_loopback=False)
    pool = delivery.connection_pool(target)
    assert isinstance(pool, urllib3.HTTPSConnectionPool)
    assert (pool.host, pool.port) == (PUBLIC_ADDRESS, 8443)
    assert pool.cert_reqs == "CERT_REQUIRED" and pool.assert_hostname == PUBLIC_ADDRESS
    assert pool.conn_kw["server_hostname"] == PUBLIC_ADDRESS
    assert (target.host_header, target.request_target) == (f"{PUBLIC_ADDRESS}:8443", "/hooks?x=1")


def _local_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's name resolves to loopback, which the local stack allows."""
    monkeypatch.setattr(socket, "getaddrinfo", _resolver([["127.0.0.1"]])[0])


def test_a_trusted_certificate_for_the_host_name_is_accepted(runners: list[ScriptedRunner], trusted_ca: Certificates,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    runners.append(runner := ScriptedRunner([202], tls=trusted_ca.runner, host=RUNNER_HOST))
    _local_name(monkeypatch)
    assert _deliver(runner.url).accepted
    assert trusted_ca.sni == [RUNNER_HOST] and runner.host_headers == [f"{RUNNER_HOST}:{runner.port}"]


def test_a_certificate_for_another_name_is_refused(runners: list[ScriptedRunner], trusted_ca: Certificates,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    runners.append(runner := ScriptedRunner([202], tls=trusted_ca.other_name, host=RUNNER_HOST))
    _local_name(monkeypatch)
    outcome = _deliver(runner.url)
    assert not outcome.accepted and "SSLError" in outcome.error
    assert runner.attempts == 0


def test_a_certificate_from_an_untrusted_issuer_is_refused(runners: list[ScriptedRunner], certificates: Certificates,
                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))  # the test CA is not trusted
    runners.append(runner := ScriptedRunner([202], tls=certificates.runner, host=RUNNER_HOST))
    _local_name(monkeypatch)
    outcome = _deliver(runner.url)
    assert not outcome.accepted and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert runner.attempts == 0
