"""`ksflow local --data-dir --api-key`: a stopped and restarted stack keeps its key, data, secrets and open runs."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import ksapi
import pytest

from ksflow.local import resume
from ksflow.local.stack import free_port
from ksflow.runner.example import send_callback
from tests.e2e.conftest import LocalStack, Process, _start, _stop, _wait_http
from tests.e2e.test_local_stack_sdk import WEBHOOK_SECRET, _client, _definition, _knowledge

pytestmark = pytest.mark.e2e


class SilentRunner:
    """Accepts every dispatch and never calls back, remembering what it received."""

    def __init__(self) -> None:
        self.dispatches: list[dict[str, Any]] = []
        received = self.dispatches

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for_dispatches(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.dispatches) < count:
            assert time.monotonic() < deadline, f"{len(self.dispatches)} dispatches, expected {count}"
            time.sleep(0.2)
        return self.dispatches


@pytest.fixture
def silent_runner() -> Iterator[SilentRunner]:
    runner = SilentRunner()
    yield runner
    runner.server.shutdown()


class PersistentStack:
    """`ksflow local` with a data dir and a fixed key, started and stopped as a person would."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, free_port()
        self.api_key = "sk-" + secrets.token_urlsafe(32)
        self.starts = 0
        self.process: Process | None = None

    def start(self) -> LocalStack:
        self.starts += 1
        self.process = _start(["local", "--port", str(self.port), "--data-dir", "data", "--api-key", self.api_key],
                              self.workdir, self.workdir / f"stack-{self.starts}.log")
        _wait_http(f"http://127.0.0.1:{self.port}/openapi.json", self.process)
        credentials = json.loads((self.workdir / ".local" / "credentials.json").read_text())
        return LocalStack(f"http://127.0.0.1:{self.port}", self.workdir, credentials, self.process)

    def stop(self) -> None:
        assert self.process is not None
        _stop(self.process)
        assert self.process.process.returncode == 0, self.process.output()


@pytest.fixture
def persistent_stack(tmp_path: Path) -> Iterator[PersistentStack]:
    stack = PersistentStack(tmp_path)
    yield stack
    if stack.process is not None and stack.process.process.poll() is None:
        _stop(stack.process)


def _run(client: ksapi.ApiClient, run_id: Any) -> ksapi.WorkflowRunResponse:
    return ksapi.WorkflowRunsApi(client).get_workflow_run(run_id)


def _pass_deadline_while_stopped(data_dir: Path, run_id: str) -> None:
    """Stands in for a stop longer than the run's limit (60 s at least): its saved deadline is moved back."""
    table = data_dir / "table.json"
    items = json.loads(table.read_text())
    for item in items:
        if item["pk"]["S"] == f"RUN#{run_id}" and item["sk"]["S"] == "RUN":
            item["deadline"]["S"] = "2000-01-01T00:00:00Z"
    table.write_text(json.dumps(items))


def _call(stack: LocalStack, api_key: str, method: str, path: str) -> dict[str, Any]:
    """What the 1.80.1 SDK does not know: stop, retry, and the fields runs gained since."""
    request = urllib.request.Request(f"{stack.url}{path}", method=method,
                                     headers={"Authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def test_key_data_secret_and_open_runs_survive_a_restart(persistent_stack: PersistentStack,
                                                         silent_runner: SilentRunner) -> None:
    first = persistent_stack.start()
    assert first.credentials["api_key"] == persistent_stack.api_key
    assert f"state kept in {persistent_stack.workdir / 'data'}" in first.process.output()
    client = _client(first, persistent_stack.api_key)
    parts = _knowledge(client, first.credentials["root_path_part_id"])
    definition = _definition(client, parts, silent_runner.url)
    invoke = ksapi.WorkflowDefinitionsApi(client).invoke_workflow
    resumable, overdue, retried = (invoke(definition.id, ksapi.InvokeWorkflowRequest()) for _ in range(3))
    silent_runner.wait_for_dispatches(3)
    _call(first, persistent_stack.api_key, "POST", f"/v1/workflow-runs/{retried.id}/stop")
    assert _call(first, persistent_stack.api_key, "POST", f"/v1/workflow-runs/{retried.id}/retry")["attempt"] == 2
    silent_runner.wait_for_dispatches(4)
    persistent_stack.stop()
    _pass_deadline_while_stopped(persistent_stack.workdir / "data", str(overdue.id))

    second = persistent_stack.start()
    assert second.credentials == first.credentials
    client = _client(second, persistent_stack.api_key)
    restored = ksapi.WorkflowDefinitionsApi(client).get_workflow_definition(definition.id)
    assert restored.name == definition.name and restored.runner_config.url == silent_runner.url
    assert ksapi.DocumentsApi(client).get_document(parts["template"].id).name == parts["template"].name
    assert "2 run(s) dispatched again, 1 failed (deadline passed)" in second.process.output()

    failed = _run(client, overdue.id)
    assert (failed.status, failed.error) == ("FAILED", resume.DEADLINE_PASSED)
    redispatches = {d["run"]["id"]: d for d in silent_runner.wait_for_dispatches(6)[4:]}
    assert set(redispatches) == {str(resumable.id), str(retried.id)}
    assert _run(client, resumable.id).status in ("PENDING", "RUNNING")
    # The definition's secret, encrypted before the restart, still verifies the runner's signature.
    assert send_callback(redispatches[str(resumable.id)]["callback_url"], WEBHOOK_SECRET, "COMPLETED", None) == 200
    assert _run(client, resumable.id).status == "COMPLETED"
    # A retried run is taken up again at its current attempt, and its earlier attempt stays in the record.
    again = redispatches[str(retried.id)]
    assert again["attempt"] == 2 and again["callback_url"].endswith("?attempt=2")
    assert send_callback(again["callback_url"], WEBHOOK_SECRET, "COMPLETED", None) == 200
    completed = _call(second, persistent_stack.api_key, "GET", f"/v1/workflow-runs/{retried.id}")
    assert (completed["status"], completed["attempt"]) == ("COMPLETED", 2)
    assert [(a["attempt"], a["error"]) for a in completed["attempts"]] == [(1, "Stopped by user")]


def test_default_stack_says_it_keeps_state_in_memory(local_stack: LocalStack) -> None:
    assert "state kept in memory and lost on exit" in local_stack.process.output()
