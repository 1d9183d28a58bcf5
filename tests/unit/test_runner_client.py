"""`ksflow.runner.client`, the module runner authors import: dispatches verify as the service signs them,
heartbeats and callbacks verify as the service checks them, and only what may not have arrived is sent again."""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from ksflow import cli
from ksflow.runner import client, example
from ksflow.workflows import webhooks

WHSEC = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ=="
PLAIN = "a plain secret"
RUN_ID = "4b0c4d63-2f57-4a3c-9a4e-6d1c3f0e8a11"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeApi:
    """Records every POST; answers each path's scripted (status, body) in turn, then 200 RUNNING."""

    url: str
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)

    def to(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.path.split("?")[0].endswith("/" + kind)]

    def answer(self, kind: str, *answers: tuple[int, dict[str, Any]]) -> None:
        self.script.setdefault(kind, []).extend(answers)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            kind = self.path.split("?")[0].rsplit("/", 1)[-1]
            with lock:
                fake.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                queued = fake.script.get(kind) or []
                status, payload = queued.pop(0) if queued else (200, {"status": "RUNNING"})
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield fake
    server.shutdown()
    server.server_close()


def dispatch_body(api_url: str = "http://api.test", *, attempt: int | None = 2, deadline: datetime | None = None,
                  **extra: Any) -> str:
    base = f"{api_url}/v1/workflow-runs/{RUN_ID}"
    query = f"?attempt={attempt}" if attempt is not None else ""
    payload: dict[str, Any] = {
        "type": "workflow_run.dispatch",
        "run": {"id": RUN_ID, "status": "PENDING", "run_snapshot": {"workflow_name": "Summarise", "sources": []}},
        "callback_url": f"{base}/callback{query}",
        "deadline": (deadline or datetime.now(UTC) + timedelta(minutes=10)).isoformat().replace("+00:00", "Z"),
    }
    if attempt is not None:
        payload |= {"attempt": attempt, "heartbeat_url": f"{base}/heartbeat{query}"}
    return json.dumps(payload | extra, separators=(",", ":"))


def signed(body: str, secret: str, at: datetime | None = None, message_id: str = "msg_dispatch") -> dict[str, str]:
    return webhooks.sign_headers(secret, message_id, at or datetime.now(UTC), body)


def a_dispatch(api: FakeApi, secret: str = WHSEC, **kwargs: Any) -> client.Dispatch:
    body = dispatch_body(api.url, **kwargs)
    return client.verify_dispatch(secret, signed(body, secret), body)


def verifies(secret: str, request: Received) -> bool:
    """As the service checks a runner's message, with the `standardwebhooks` package."""
    webhook = Webhook(secret if secret.startswith("whsec_") else secret.encode())
    webhook.verify(request.body, request.headers)
    return True


# Verifying dispatches.

@pytest.mark.parametrize("secret", [WHSEC, PLAIN])
def test_a_signed_dispatch_verifies_and_reads(secret: str) -> None:
    deadline = datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    body = dispatch_body(deadline=deadline)
    headers = {name.upper(): value for name, value in signed(body, secret, message_id="msg_1").items()}
    dispatch = client.verify_dispatch(secret, headers, body.encode())
    assert dispatch == client.Dispatch(
        run=json.loads(body)["run"], run_id=RUN_ID, attempt=2, deadline=deadline, message_id="msg_1",
        callback_url=f"http://api.test/v1/workflow-runs/{RUN_ID}/callback?attempt=2",
        heartbeat_url=f"http://api.test/v1/workflow-runs/{RUN_ID}/heartbeat?attempt=2")


def test_a_dispatch_from_an_older_service_is_attempt_one_with_the_callbacks_sibling_for_heartbeats() -> None:
    body = dispatch_body(attempt=None)
    dispatch = client.verify_dispatch(PLAIN, signed(body, PLAIN), body)
    assert dispatch.attempt == 1
    assert dispatch.heartbeat_url == f"http://api.test/v1/workflow-runs/{RUN_ID}/heartbeat"


@pytest.mark.parametrize(("secret", "change", "reason"), [
    ("another secret", lambda body: body, "no signature matches"),
    (WHSEC, lambda body: body.replace("Summarise", "Summarize"), "no signature matches"),
])
def test_another_secret_or_a_changed_body_is_refused(secret: str, change: Callable[[str], str], reason: str) -> None:
    body = dispatch_body()
    with pytest.raises(client.InvalidDispatch, match=reason) as refused:
        client.verify_dispatch(WHSEC, signed(body, secret), change(body))
    assert refused.value.http_status == 401


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_a_timestamp_more_than_five_minutes_off_is_refused(offset: timedelta) -> None:
    body = dispatch_body()
    sent = datetime.now(UTC) + offset
    with pytest.raises(client.InvalidDispatch, match="off the clock"):
        client.verify_dispatch(WHSEC, signed(body, WHSEC, at=sent), body)
    assert client.verify_dispatch(WHSEC, signed(body, WHSEC, at=sent), body, now=sent + timedelta(minutes=4))


def test_missing_headers_are_named() -> None:
    body = dispatch_body()
    headers = signed(body, WHSEC)
    del headers["webhook-signature"]
    with pytest.raises(client.InvalidDispatch, match=r"missing header.*webhook-signature"):
        client.verify_dispatch(WHSEC, headers, body)


def test_one_valid_signature_among_several_is_enough() -> None:
    body = dispatch_body()
    headers = signed(body, WHSEC)
    valid = headers["webhook-signature"]
    rolled = webhooks.sign_headers("old secret", "msg_dispatch", datetime.now(UTC), body)["webhook-signature"]
    headers["webhook-signature"] = f"v1,not-base64! {rolled} v2,{valid[3:]} garbage {valid}"
    assert client.verify_dispatch(WHSEC, headers, body).run_id == RUN_ID
    headers["webhook-signature"] = f"v1,not-base64! {rolled} v2,{valid[3:]} garbage"
    with pytest.raises(client.InvalidDispatch, match="no signature matches"):
        client.verify_dispatch(WHSEC, headers, body)


@pytest.mark.parametrize("body", ["not json", "[1]", json.dumps({"type": "workflow_run.cancel", "run": {"id": "r"}}),
                                  dispatch_body().replace('"deadline"', '"dead_line"')])
def test_a_signed_body_that_is_not_a_dispatch_is_a_400(body: str) -> None:
    with pytest.raises(client.InvalidDispatch, match=r"not a workflow_run\.dispatch") as refused:
        client.verify_dispatch(PLAIN, signed(body, PLAIN), body)
    assert refused.value.http_status == 400


def test_an_empty_secret_is_refused_as_a_key() -> None:
    body = dispatch_body()
    with pytest.raises(ValueError, match="empty"):
        client.verify_dispatch("", signed(body, WHSEC), body)


# Heartbeats and callbacks.

@pytest.mark.parametrize("secret", [WHSEC, PLAIN])
def test_heartbeats_and_callbacks_are_signed_as_the_service_checks(api: FakeApi, secret: str) -> None:
    reporter = client.RunReporter(a_dispatch(api, secret), secret)
    api.answer("callback", (200, {"status": "COMPLETED"}))
    assert reporter.heartbeat(progress=12.5, message="reading") == "RUNNING"
    assert reporter.heartbeat() == "RUNNING"
    assert reporter.complete() == "COMPLETED"
    first, again = api.to("heartbeat")
    assert first.path == again.path == f"/v1/workflow-runs/{RUN_ID}/heartbeat?attempt=2"
    assert first.json == again.json == {"progress": 12.5, "message": "reading"}
    assert first.headers["webhook-id"] != again.headers["webhook-id"]
    [callback] = api.to("callback")
    assert callback.path == f"/v1/workflow-runs/{RUN_ID}/callback?attempt=2"
    assert callback.json == {"status": "COMPLETED"}
    assert all(verifies(secret, request) for request in api.received)


def test_a_failure_carries_its_error_cut_to_the_limit(api: FakeApi) -> None:
    reporter = client.RunReporter(a_dispatch(api), WHSEC)
    api.answer("callback", (200, {"status": "FAILED"}))
    assert reporter.fail("x" * 9000) == "FAILED"
    assert api.to("callback")[0].json == {"status": "FAILED", "error": "x" * 8192}


def test_progress_must_be_from_0_to_100(api: FakeApi) -> None:
    reporter = client.RunReporter(a_dispatch(api), WHSEC)
    for wrong in (-1, 100.5, True):
        with pytest.raises(ValueError, match="0 to 100"):
            reporter.heartbeat(progress=wrong)
    assert api.received == []


@pytest.mark.parametrize("status", [503, 429, 408])
def test_what_may_not_have_arrived_is_sent_again_as_the_same_message(api: FakeApi, status: int) -> None:
    reporter = client.RunReporter(a_dispatch(api), WHSEC, first_backoff=0.01)
    api.answer("callback", (status, {"detail": "busy"}), (200, {"status": "COMPLETED"}))
    assert reporter.complete() == "COMPLETED"
    first, again = api.to("callback")
    assert first.headers["webhook-id"] == again.headers["webhook-id"] and first.body == again.body
    assert verifies(WHSEC, first) and verifies(WHSEC, again)


def test_409_raises_run_ended_at_once_and_marks_the_reporter_ended(api: FakeApi) -> None:
    reporter = client.RunReporter(a_dispatch(api), WHSEC, first_backoff=0.01)
    api.answer("heartbeat", (409, {"detail": "Run already COMPLETED"}))
    with pytest.raises(client.RunEnded) as ended:
        reporter.heartbeat(progress=50)
    assert (ended.value.status, ended.value.detail) == (409, "Run already COMPLETED")
    assert reporter.ended.is_set() and len(api.received) == 1


def test_other_4xx_answers_are_final(api: FakeApi) -> None:
    reporter = client.RunReporter(a_dispatch(api), WHSEC, first_backoff=0.01)
    api.answer("callback", (400, {"detail": "bad"}), (200, {"status": "COMPLETED"}))
    with pytest.raises(client.ReportFailed, match="HTTP 400: bad") as refused:
        reporter.complete()
    assert refused.value.status == 400 and not isinstance(refused.value, client.RunEnded)
    assert len(api.received) == 1 and not reporter.ended.is_set()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_service_is_tried_a_few_times_then_reported() -> None:
    dispatch = a_dispatch(FakeApi(url=f"http://127.0.0.1:{_closed_port()}"))
    reporter = client.RunReporter(dispatch, WHSEC, attempts=3, first_backoff=0.01)
    with pytest.raises(client.ReportFailed) as unreachable:
        reporter.complete()
    assert unreachable.value.status is None and "Connection refused" in str(unreachable.value)


def test_no_retry_waits_past_the_deadline(api: FakeApi) -> None:
    dispatch = a_dispatch(api, deadline=datetime.now(UTC) + timedelta(seconds=0.3))
    api.answer("callback", (503, {}), (200, {"status": "COMPLETED"}))
    with pytest.raises(client.ReportFailed, match="HTTP 503"):
        client.RunReporter(dispatch, WHSEC, first_backoff=0.5).complete()
    assert len(api.received) == 1


def test_keep_alive_reports_the_latest_progress_and_stops_on_409(api: FakeApi) -> None:
    reporter = client.RunReporter(a_dispatch(api), WHSEC)
    api.answer("heartbeat", (200, {"status": "RUNNING"}), (200, {"status": "RUNNING"}),
               (409, {"detail": "attempt 3 is current"}))
    reporter.update(progress=10, message="starting")
    with reporter.keep_alive(every=0.05):
        assert reporter.ended.wait(5)
        reporter.update(progress=90)
        time.sleep(0.15)
    beats = api.to("heartbeat")
    assert len(beats) == 3 and all(verifies(WHSEC, beat) for beat in beats)
    assert beats[0].json == {"progress": 10, "message": "starting"}
    assert isinstance(reporter.heartbeat_error, client.RunEnded)
    assert "attempt 3 is current" in str(reporter.heartbeat_error)


def test_keep_alive_stops_when_the_block_ends_and_after_a_final_refusal(api: FakeApi) -> None:
    reporter = client.RunReporter(a_dispatch(api), WHSEC)
    with reporter.keep_alive(every=0.05):
        time.sleep(0.12)
    sent = len(api.to("heartbeat"))
    time.sleep(0.15)
    assert 2 <= sent == len(api.to("heartbeat"))

    api.answer("heartbeat", (404, {"detail": "Not Found"}))
    with reporter.keep_alive(every=0.02):
        time.sleep(0.15)
    assert len(api.to("heartbeat")) == sent + 1
    assert reporter.heartbeat_error is not None and reporter.heartbeat_error.status == 404
    assert not reporter.ended.is_set()


# The example runner and the README's minimal runner.

@pytest.fixture
def example_runner(api: FakeApi) -> Iterator[Callable[..., tuple[str, list[str]]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(**options: Any) -> tuple[str, list[str]]:
        lines: list[str] = []
        server = example.make_server("127.0.0.1", 0, WHSEC, log=lines.append, **options)
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/", lines

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def post(url: str, body: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def wait_until(predicate: Callable[[], Any], timeout: float = 5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_the_example_runner_heartbeats_with_rising_progress_while_it_waits(
        api: FakeApi, example_runner: Callable[..., tuple[str, list[str]]]) -> None:
    url, lines = example_runner(delay=0.6, fail=False, heartbeat_every=0.1)
    body = dispatch_body(api.url)
    assert post(url, body, signed(body, WHSEC)) == 202
    wait_until(lambda: api.to("callback"))
    [callback] = api.to("callback")
    assert callback.json == {"status": "COMPLETED"} and verifies(WHSEC, callback)
    beats = api.to("heartbeat")
    progress = [beat.json["progress"] for beat in beats]
    assert len(beats) >= 4 and progress == sorted(progress) and progress[0] < 50 < progress[-1] <= 100
    assert all(verifies(WHSEC, beat) and "message" in beat.json for beat in beats)
    assert lines[0] == f"accepted run {RUN_ID} (Summarise)"
    wait_until(lambda: len(lines) == 2)
    assert lines[1] == f"reported COMPLETED for run {RUN_ID}: HTTP 200"


def test_the_example_runner_stops_without_calling_back_when_a_heartbeat_gets_409(
        api: FakeApi, example_runner: Callable[..., tuple[str, list[str]]]) -> None:
    url, lines = example_runner(delay=0.5, fail=True, heartbeat_every=0.05)
    api.answer("heartbeat", (200, {"status": "RUNNING"}), (409, {"detail": "Run already CANCELLED"}))
    body = dispatch_body(api.url)
    assert post(url, body, signed(body, WHSEC)) == 202
    stopped = wait_until(lambda: [line for line in lines if line.startswith("stopped run")])
    assert stopped == [f"stopped run {RUN_ID} without calling back: POST {api.url}/v1/workflow-runs/{RUN_ID}"
                       "/heartbeat?attempt=2 answered HTTP 409: Run already CANCELLED"]
    time.sleep(0.6)
    assert len(api.to("heartbeat")) == 2 and api.to("callback") == []


def test_the_example_runner_without_heartbeats_only_calls_back(
        api: FakeApi, example_runner: Callable[..., tuple[str, list[str]]]) -> None:
    url, lines = example_runner(delay=0, fail=True)
    api.answer("callback", (409, {"detail": "Run already FAILED"}))
    body = dispatch_body(api.url)
    assert post(url, body, signed(body, WHSEC)) == 202
    wait_until(lambda: len(lines) == 2)
    assert lines[1] == (f"reported FAILED for run {RUN_ID}: HTTP 409 (Run already FAILED) "
                        "(Example runner was asked to fail)")
    assert [request.json for request in api.received] == [
        {"status": "FAILED", "error": "Example runner was asked to fail"}]


def test_the_example_runner_refuses_a_signed_body_that_is_not_a_dispatch(
        example_runner: Callable[..., tuple[str, list[str]]]) -> None:
    url, lines = example_runner(delay=0, fail=False)
    assert post(url, "[1]", signed("[1]", WHSEC)) == 400
    assert lines == ["rejected dispatch: signed, but not a workflow_run.dispatch: not a JSON object"]


def test_send_callback_answers_the_http_status(api: FakeApi) -> None:
    callback_url = f"{api.url}/v1/workflow-runs/{RUN_ID}/callback"
    api.answer("callback", (200, {"status": "COMPLETED"}), (409, {"detail": "ended"}))
    assert example.send_callback(callback_url, PLAIN, "COMPLETED", None) == 200
    assert example.send_callback(callback_url, PLAIN, "FAILED", "why") == 409
    assert [request.json for request in api.received] == [{"status": "COMPLETED"},
                                                          {"status": "FAILED", "error": "why"}]
    assert all(verifies(PLAIN, request) for request in api.received)


def test_the_readme_runner_verifies_a_dispatch_and_calls_back(api: FakeApi) -> None:
    port = _closed_port()
    functions = Path(__file__).resolve().parents[2] / "functions"
    env = {**os.environ, "KSFLOW_WEBHOOK_SECRET": PLAIN, "PORT": str(port), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(functions), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "ksflow.runner.minimal"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/"

        def listening() -> bool:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening)
        body = dispatch_body(api.url)
        assert post(url, body, signed(body, "another secret")) == 401
        assert post(url, body, signed(body, PLAIN)) == 202
        wait_until(lambda: api.to("callback"))
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=5)
    assert output.decode().strip() == "working on Summarise"
    [beat] = api.to("heartbeat")
    [callback] = api.to("callback")
    assert beat.json == {"progress": 0, "message": "starting"} and verifies(PLAIN, beat)
    assert callback.json == {"status": "COMPLETED"} and verifies(PLAIN, callback)


def test_the_client_imports_only_the_standard_library_so_it_can_be_copied() -> None:
    tree = ast.parse(Path(client.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} - {"__future__"} <= sys.stdlib_module_names


def test_the_cli_passes_heartbeat_every_to_the_example_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(example, "serve", lambda *args, **kwargs: calls.append(kwargs))
    cli.main(["example-runner", "--secret", PLAIN, "--heartbeat-every", "2.5", "--fail"])
    cli.main(["example-runner", "--secret", PLAIN])
    assert [(call["heartbeat_every"], call["fail"]) for call in calls] == [(2.5, True), (0.0, False)]
    with pytest.raises(SystemExit, match="heartbeat-every"):
        cli.main(["example-runner", "--secret", PLAIN, "--heartbeat-every", "-1"])
