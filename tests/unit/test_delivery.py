"""Dispatch delivery: what is retried, what is final, and what the error says."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ksflow.orchestration import delivery


class ScriptedRunner:
    """Answers each POST with the next status of its script (the last one repeats)."""

    def __init__(self, statuses: list[int], location: str | None = None) -> None:
        self.statuses, self.location, self.attempts = statuses, location, 0
        runner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = runner.statuses[min(runner.attempts, len(runner.statuses) - 1)]
                runner.attempts += 1
                self.send_response(status)
                if runner.location:
                    self.send_header("Location", runner.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
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


def _deliver(url: str, budget: float = 30.0) -> delivery.Outcome:
    return delivery.deliver(url, b"{}", lambda: {"Content-Type": "application/json"},
                            seconds_left=lambda: budget, base_delay=0.01, max_delay=0.02)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_retryable_answers_are_retried_until_accepted(runners: list[ScriptedRunner], status: int) -> None:
    runners.append(runner := ScriptedRunner([status, status, 202]))
    outcome = _deliver(runner.url)
    assert outcome.accepted and outcome.attempts == 3 and runner.attempts == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_client_errors_get_one_attempt_and_name_the_status(runners: list[ScriptedRunner], status: int) -> None:
    runners.append(runner := ScriptedRunner([status]))
    outcome = _deliver(runner.url)
    assert not outcome.accepted and runner.attempts == 1
    assert outcome.error == f"Runner answered HTTP {status}"


def test_redirects_are_not_followed(runners: list[ScriptedRunner]) -> None:
    runners.append(target := ScriptedRunner([202]))
    runners.append(redirecting := ScriptedRunner([302], location=target.url))
    outcome = _deliver(redirecting.url)
    assert not outcome.accepted and outcome.error == "Runner answered HTTP 302"
    assert target.attempts == 0


def test_retries_stop_when_the_budget_runs_out(runners: list[ScriptedRunner]) -> None:
    runners.append(runner := ScriptedRunner([503]))
    outcome = _deliver(runner.url, budget=0.0)
    assert not outcome.accepted and runner.attempts == 1
    assert outcome.error is not None and outcome.error.startswith("Runner answered HTTP 503 (gave up after 1 attempts")


def test_network_errors_are_named() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = _deliver(f"http://127.0.0.1:{port}/", budget=0.0)
    assert not outcome.accepted
    assert outcome.error is not None and "Runner unreachable" in outcome.error and "NewConnectionError" in outcome.error
