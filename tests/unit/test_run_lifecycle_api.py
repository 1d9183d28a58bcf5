"""The run lifecycle through the API Lambda: retry policy fields, stop, retry, heartbeats and run events.

Runs come from a runner that accepts the dispatch and never calls back, so each test decides
how a run ends; whatever a test leaves open is stopped at teardown so its execution ends.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.client
import pytest
from boto3.dynamodb.conditions import Key
from ksapi.models import WorkflowRunResponse

from ksflow import aws
from ksflow.identity.models import CreatedTenant
from tests.conftest import RUNNER_SECRET, Response, Runner, call_api, definition_body, wait_for
from tests.unit.conftest import callback, execution_status, get_run, signed

OTHER_SECRET = "whsec_" + base64.b64encode(b"not-the-definition-secret").decode()
EMOJI = "\U0001f600"  # four bytes in UTF-8, a surrogate pair in UTF-16
ELLIPSIS = "\u2026"


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def _invoke(tenant: CreatedTenant, definition_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = call_api("POST", f"/v1/workflow-definitions/{definition_id}/invoke", body or {}, tenant.api_key)
    assert response.status == 202, response.body
    return dict(response.body)


def _wait_status(tenant: CreatedTenant, run_id: str, status: str, attempt: int | None = None,
                 timeout: float = 15) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        run = get_run(run_id, tenant.api_key)
        return run if run["status"] == status and (attempt is None or run["attempt"] == attempt) else None

    return dict(wait_for(reached, timeout=timeout))


def _heartbeat(run_id: str, payload: dict[str, Any] | None = None, *, raw_body: str | None = None,
               secret: str | None = RUNNER_SECRET, api_key: str | None = None, message_id: str | None = None,
               query: str = "", headers: dict[str, str] | None = None) -> Response:
    body = raw_body if raw_body is not None else json.dumps(payload or {})
    if headers is None:
        headers = signed(body, secret, message_id=message_id) if secret is not None else {}
    return call_api("POST", f"/v1/workflow-runs/{run_id}/heartbeat{query}", headers=headers, raw_body=body,
                    api_key=api_key)


def _callback_at(run_id: str, payload: dict[str, Any], query: str) -> Response:
    """A signed callback with a query string (`?attempt=N`)."""
    body = json.dumps(payload)
    return call_api("POST", f"/v1/workflow-runs/{run_id}/callback{query}", headers=signed(body), raw_body=body)


def _events(run_id: str, api_key: str) -> list[dict[str, Any]]:
    """Every event of the run, oldest first, read a page of 100 at a time."""
    items: list[dict[str, Any]] = []
    while True:
        page = call_api("GET", f"/v1/workflow-runs/{run_id}/events?limit=100&offset={len(items)}", api_key=api_key)
        assert page.status == 200, page.body
        items += page.body["items"]
        if not page.body["items"] or len(items) >= page.body["total"]:
            assert page.body["total"] == len(items), (page.body["total"], len(items))
            return items


def _of_type(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == type_]


def _definition(knowledge: dict[str, str], runner_url: str, **overrides: Any) -> dict[str, Any]:
    return definition_body(knowledge, runner_url, **overrides)


def _get_definition(tenant: CreatedTenant, definition_id: str) -> dict[str, Any]:
    response = call_api("GET", f"/v1/workflow-definitions/{definition_id}", api_key=tenant.api_key)
    assert response.status == 200, response.body
    return dict(response.body)


# ---------------------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def silent_runner(runner_factory: Callable[..., Runner]) -> Runner:
    """Accepts every dispatch and never calls back (within a test)."""
    return runner_factory(delay=3600)


@pytest.fixture
def running(tenant: CreatedTenant, silent_runner: Runner,
            create_definition: Callable[..., dict[str, Any]]) -> Iterator[Callable[..., dict[str, Any]]]:
    """Start a RUNNING run (of a given definition, or of a fresh silent one); stopped at teardown if still open."""
    started: list[str] = []

    def start(definition: dict[str, Any] | None = None, body: dict[str, Any] | None = None) -> dict[str, Any]:
        definition = definition or create_definition(silent_runner.url)
        run = _invoke(tenant, definition["id"], body)
        started.append(run["id"])
        _wait_status(tenant, run["id"], "RUNNING")
        return run

    yield start
    for run_id in started:
        current = call_api("GET", f"/v1/workflow-runs/{run_id}", api_key=tenant.api_key)
        if current.status == 200 and current.body["status"] in ("PENDING", "RUNNING"):
            call_api("POST", f"/v1/workflow-runs/{run_id}/stop", api_key=tenant.api_key)


@pytest.fixture
def slow_runner() -> Iterator[tuple[str, threading.Event]]:
    """A runner that holds each dispatch for 2 s before accepting it (the run stays PENDING meanwhile)."""
    answered = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(2)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            answered.set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", answered
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------------------------------------------------------
# Definitions: retry_policy and heartbeat_timeout_seconds


def test_definition_round_trips_retry_policy_and_heartbeat_timeout(
        tenant: CreatedTenant, knowledge: dict[str, str], create_definition: Callable[..., dict[str, Any]]) -> None:
    policy = {"max_attempts": 3, "backoff_seconds": 5, "backoff_multiplier": 1.5}
    created = create_definition(retry_policy=policy, heartbeat_timeout_seconds=30)
    assert created["retry_policy"] == policy
    assert isinstance(created["retry_policy"]["backoff_multiplier"], float)
    assert created["heartbeat_timeout_seconds"] == 30
    fetched = _get_definition(tenant, created["id"])
    assert (fetched["retry_policy"], fetched["heartbeat_timeout_seconds"]) == (policy, 30)

    # A partial policy gets the defaults for what it leaves out.
    body = _definition(knowledge, "https://93.184.216.34/runner", retry_policy={"max_attempts": 10},
                       heartbeat_timeout_seconds=3600)
    replaced = call_api("PUT", f"/v1/workflow-definitions/{created['id']}", body, tenant.api_key)
    assert replaced.status == 200, replaced.body
    defaults = {"max_attempts": 10, "backoff_seconds": 30, "backoff_multiplier": 2}
    assert (replaced.body["retry_policy"], replaced.body["heartbeat_timeout_seconds"]) == (defaults, 3600)
    fetched = _get_definition(tenant, created["id"])
    assert (fetched["retry_policy"], fetched["heartbeat_timeout_seconds"]) == (defaults, 3600)

    partial = create_definition(retry_policy={"backoff_multiplier": 10, "backoff_seconds": 1},
                                heartbeat_timeout_seconds=10)
    assert partial["retry_policy"] == {"max_attempts": 1, "backoff_seconds": 1, "backoff_multiplier": 10}
    assert partial["heartbeat_timeout_seconds"] == 10
    empty = create_definition(retry_policy={})
    assert empty["retry_policy"] == {"max_attempts": 1, "backoff_seconds": 30, "backoff_multiplier": 2}
    assert empty["heartbeat_timeout_seconds"] is None

    # PUT is a full replacement: without them, both are reset.
    reset = call_api("PUT", f"/v1/workflow-definitions/{created['id']}",
                     _definition(knowledge, "https://93.184.216.34/runner"), tenant.api_key)
    assert reset.status == 200, reset.body
    assert (reset.body["retry_policy"], reset.body["heartbeat_timeout_seconds"]) == (None, None)
    fetched = _get_definition(tenant, created["id"])
    assert (fetched["retry_policy"], fetched["heartbeat_timeout_seconds"]) == (None, None)


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_out_of_range_policy_values_are_422_with_their_location(
        method: str, tenant: CreatedTenant, knowledge: dict[str, str],
        create_definition: Callable[..., dict[str, Any]]) -> None:
    existing = create_definition(retry_policy={"max_attempts": 2}, heartbeat_timeout_seconds=20)
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"retry_policy": {"max_attempts": 0}}, ["retry_policy", "max_attempts"]),
        ({"retry_policy": {"max_attempts": 11}}, ["retry_policy", "max_attempts"]),
        ({"retry_policy": {"backoff_seconds": 0}}, ["retry_policy", "backoff_seconds"]),
        ({"retry_policy": {"backoff_seconds": 3601}}, ["retry_policy", "backoff_seconds"]),
        ({"retry_policy": {"backoff_multiplier": 0.5}}, ["retry_policy", "backoff_multiplier"]),
        ({"retry_policy": {"backoff_multiplier": 11}}, ["retry_policy", "backoff_multiplier"]),
        ({"retry_policy": {"max_attempts": 2, "jitter": True}}, ["retry_policy", "jitter"]),
        ({"heartbeat_timeout_seconds": 9}, ["heartbeat_timeout_seconds"]),
        ({"heartbeat_timeout_seconds": 3601}, ["heartbeat_timeout_seconds"]),
    ]
    for overrides, location in cases:
        body = _definition(knowledge, "https://93.184.216.34/runner", name="refused", **overrides)
        path = "/v1/workflow-definitions" + (f"/{existing['id']}" if method == "PUT" else "")
        response = call_api(method, path, body, tenant.api_key)
        assert response.status == 422, (overrides, response.body)
        detail = response.body["detail"]
        assert isinstance(detail, list) and detail, detail
        assert any(entry["loc"][0] == "body" and entry["loc"][-len(location):] == location for entry in detail), (
            overrides, detail)
    listed = call_api("GET", "/v1/workflow-definitions", api_key=tenant.api_key).body
    assert [d["name"] for d in listed["items"]] == ["Summarise"]
    unchanged = _get_definition(tenant, existing["id"])
    assert unchanged["retry_policy"]["max_attempts"] == 2 and unchanged["heartbeat_timeout_seconds"] == 20


# ---------------------------------------------------------------------------------------------------------------
# Run responses and stop


def test_a_new_run_is_attempt_one_and_the_sdk_parses_it(
        aws_env: dict[str, str], tenant: CreatedTenant, running: Callable[..., dict[str, Any]]) -> None:
    invoked = running()
    for run in (invoked, get_run(invoked["id"], tenant.api_key)):
        assert run["attempt"] == 1 and run["attempts"] == []
        assert (run["progress"], run["progress_message"], run["last_heartbeat_at"]) == (None, None, None)
        assert run["invoked_by"] == tenant.user_id == run["user_id"]
        assert (run["trigger"], run["scheduled_for"]) == ("MANUAL", None)
        parsed = WorkflowRunResponse.from_dict(run)
        assert parsed is not None and str(parsed.id) == run["id"]
        from_json = WorkflowRunResponse.from_json(json.dumps(run))
        assert from_json is not None and from_json.status == parsed.status


def test_stop_a_running_run(aws_env: dict[str, str], tenant: CreatedTenant,
                            running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    before = get_run(run["id"], tenant.api_key)
    stopped = call_api("POST", f"/v1/workflow-runs/{run['id']}/stop", api_key=tenant.api_key)
    assert stopped.status == 200, stopped.body
    assert (stopped.body["status"], stopped.body["error"]) == ("FAILED", "Stopped by user")
    assert stopped.body["completed_at"] is not None and stopped.body["attempt"] == 1
    assert stopped.body["updated_at"] > before["updated_at"]
    assert WorkflowRunResponse.from_dict(stopped.body) is not None
    assert get_run(run["id"], tenant.api_key) == stopped.body
    again = call_api("POST", f"/v1/workflow-runs/{run['id']}/stop", api_key=tenant.api_key)
    assert again.status == 409, again.body
    assert "FAILED" in again.body["detail"]
    assert callback(run["id"], {"status": "COMPLETED"}).status == 409
    assert get_run(run["id"], tenant.api_key) == stopped.body
    execution = call_api("GET", f"/v1/workflows/run-{run['id']}", api_key=tenant.api_key)
    assert execution.status == 200, execution.body
    assert execution.body["execution_status"] == "CANCELED"
    failed = _of_type(_events(run["id"], tenant.api_key), "failed")
    assert [(e["attempt"], e["detail"]["reason"], e["detail"]["error"]) for e in failed] == [
        (1, "stopped", "Stopped by user")]
    assert execution_status(aws_env, run["workflow_id"]) in ("SUCCEEDED", "ABORTED")


def test_stop_a_pending_run_before_its_runner_answers(
        aws_env: dict[str, str], tenant: CreatedTenant, create_definition: Callable[..., dict[str, Any]],
        slow_runner: tuple[str, threading.Event]) -> None:
    url, answered = slow_runner
    run = _invoke(tenant, create_definition(url)["id"])
    assert get_run(run["id"], tenant.api_key)["status"] == "PENDING"
    stopped = call_api("POST", f"/v1/workflow-runs/{run['id']}/stop", api_key=tenant.api_key)
    assert stopped.status == 200, stopped.body
    assert (stopped.body["status"], stopped.body["error"]) == ("FAILED", "Stopped by user")
    # The runner accepting the dispatch afterwards does not bring the run back.
    answered.wait(10)
    time.sleep(0.5)
    after = get_run(run["id"], tenant.api_key)
    assert (after["status"], after["error"]) == ("FAILED", "Stopped by user")
    assert not _of_type(_events(run["id"], tenant.api_key), "dispatched")
    assert call_api("POST", f"/v1/workflow-runs/{run['id']}/stop", api_key=tenant.api_key).status == 409
    execution = call_api("GET", f"/v1/workflows/run-{run['id']}", api_key=tenant.api_key).body
    assert execution["execution_status"] == "CANCELED"
    # Its execution ends too (stopped before the dispatch had a task token: moto reports the
    # interrupted wait as FAILED where AWS says ABORTED, so only "no longer running" is checked).
    assert execution_status(aws_env, run["workflow_id"]) != "RUNNING"


def test_others_cannot_stop_retry_or_read_the_history_and_bad_ids_are_422(
        tenant: CreatedTenant, other_tenant: CreatedTenant, running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    for method, action in (("POST", "stop"), ("POST", "retry"), ("GET", "events")):
        hidden = call_api(method, f"/v1/workflow-runs/{run['id']}/{action}", api_key=other_tenant.api_key)
        assert hidden.status == 404, (action, hidden.body)
        unknown = call_api(method, f"/v1/workflow-runs/{uuid.uuid4()}/{action}", api_key=tenant.api_key)
        assert unknown.status == 404, (action, unknown.body)
        malformed = call_api(method, f"/v1/workflow-runs/not-a-uuid/{action}", api_key=tenant.api_key)
        assert malformed.status == 422, (action, malformed.body)
        assert malformed.body["detail"][0]["loc"] == ["path", "run_id"]
    assert get_run(run["id"], tenant.api_key)["status"] == "RUNNING"


# ---------------------------------------------------------------------------------------------------------------
# Retry by hand


def test_retry_is_refused_for_running_and_completed_runs(
        tenant: CreatedTenant, running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    refused = call_api("POST", f"/v1/workflow-runs/{run['id']}/retry", api_key=tenant.api_key)
    assert refused.status == 409, refused.body
    assert get_run(run["id"], tenant.api_key)["status"] == "RUNNING"
    assert callback(run["id"], {"status": "COMPLETED"}).status == 200
    completed = get_run(run["id"], tenant.api_key)
    refused = call_api("POST", f"/v1/workflow-runs/{run['id']}/retry", api_key=tenant.api_key)
    assert refused.status == 409, refused.body
    assert get_run(run["id"], tenant.api_key) == completed
    assert completed["attempt"] == 1 and completed["status"] == "COMPLETED"
    assert not _of_type(_events(run["id"], tenant.api_key), "retried")


def test_retry_of_a_failed_run_starts_exactly_one_new_attempt(
        aws_env: dict[str, str], tenant: CreatedTenant, running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    beat_body = json.dumps({"progress": 60, "message": "attempt one"})
    beat_headers = signed(beat_body)
    assert _heartbeat(run["id"], raw_body=beat_body, headers=beat_headers).status == 200
    report = json.dumps({"status": "FAILED", "error": "disk full"})
    report_headers = signed(report)
    reported = call_api("POST", f"/v1/workflow-runs/{run['id']}/callback", headers=report_headers, raw_body=report)
    assert (reported.status, reported.body) == (200, {"status": "FAILED"})
    failed = get_run(run["id"], tenant.api_key)
    assert failed["status"] == "FAILED"
    retried = call_api("POST", f"/v1/workflow-runs/{run['id']}/retry", api_key=tenant.api_key)
    assert retried.status == 202, retried.body
    assert {k.lower(): v for k, v in retried.headers.items()}["location"] == f"/v1/workflow-runs/{run['id']}"
    body = retried.body
    assert (body["id"], body["status"], body["attempt"]) == (run["id"], "PENDING", 2)
    assert (body["error"], body["completed_at"]) == (None, None)
    assert (body["progress"], body["progress_message"], body["last_heartbeat_at"]) == (None, None, None)
    assert body["started_at"] > failed["started_at"]
    assert body["attempts"] == [{"attempt": 1, "status": "FAILED", "error": "disk full",
                                 "started_at": failed["started_at"], "completed_at": failed["completed_at"]}]
    assert WorkflowRunResponse.from_dict(body) is not None
    # A second retry right after sees the PENDING attempt 2 and is refused: no attempt 3.
    second = call_api("POST", f"/v1/workflow-runs/{run['id']}/retry", api_key=tenant.api_key)
    assert second.status == 409, second.body
    running_again = _wait_status(tenant, run["id"], "RUNNING", attempt=2)
    assert running_again["attempts"] == body["attempts"]
    assert len(running_again["attempts"]) == 1
    history = _events(run["id"], tenant.api_key)
    assert [(e["attempt"], e["detail"]) for e in _of_type(history, "retried")] == [(2, {"by": tenant.user_id})]
    assert [e["attempt"] for e in _of_type(history, "dispatched")] == [1, 2]
    # Attempt 1's signed messages replayed now are stale: nothing changes.
    replayed = call_api("POST", f"/v1/workflow-runs/{run['id']}/callback", headers=report_headers, raw_body=report)
    assert replayed.status == 409, replayed.body
    replayed_beat = _heartbeat(run["id"], raw_body=beat_body, headers=beat_headers)
    assert replayed_beat.status == 409, replayed_beat.body
    assert get_run(run["id"], tenant.api_key) == running_again
    # A message for attempt 1 is stale now.
    stale = _callback_at(run["id"], {"status": "COMPLETED"}, "?attempt=1")
    assert stale.status == 409, stale.body
    assert get_run(run["id"], tenant.api_key)["status"] == "RUNNING"
    # The new attempt ends by its own callback.
    assert _callback_at(run["id"], {"status": "COMPLETED"}, "?attempt=2").status == 200
    ended = get_run(run["id"], tenant.api_key)
    assert (ended["status"], ended["attempt"], len(ended["attempts"])) == ("COMPLETED", 2, 1)
    assert execution_status(aws_env, run["workflow_id"]) in ("SUCCEEDED", "ABORTED")


def test_retry_of_an_inactive_definition_is_409(
        tenant: CreatedTenant, knowledge: dict[str, str], silent_runner: Runner,
        create_definition: Callable[..., dict[str, Any]], running: Callable[..., dict[str, Any]]) -> None:
    definition = create_definition(silent_runner.url)
    run = running(definition)
    assert callback(run["id"], {"status": "FAILED", "error": "boom"}).status == 200
    failed = get_run(run["id"], tenant.api_key)
    deactivated = call_api("PUT", f"/v1/workflow-definitions/{definition['id']}",
                           _definition(knowledge, silent_runner.url, is_active=False), tenant.api_key)
    assert deactivated.status == 200 and deactivated.body["is_active"] is False
    refused = call_api("POST", f"/v1/workflow-runs/{run['id']}/retry", api_key=tenant.api_key)
    assert refused.status == 409, refused.body
    assert "active" in refused.body["detail"]
    assert get_run(run["id"], tenant.api_key) == failed


def test_a_stop_during_a_policy_backoff_is_final_until_retried_by_hand(
        aws_env: dict[str, str], tenant: CreatedTenant, silent_runner: Runner,
        create_definition: Callable[..., dict[str, Any]], running: Callable[..., dict[str, Any]]) -> None:
    definition = create_definition(silent_runner.url, retry_policy={"max_attempts": 3, "backoff_seconds": 2})
    run = running(definition)
    assert callback(run["id"], {"status": "FAILED", "error": "flaky source"}).status == 200
    waiting = get_run(run["id"], tenant.api_key)
    assert (waiting["status"], waiting["attempt"]) == ("PENDING", 2)
    stopped = call_api("POST", f"/v1/workflow-runs/{run['id']}/stop", api_key=tenant.api_key)
    assert stopped.status == 200, stopped.body
    assert (stopped.body["status"], stopped.body["error"], stopped.body["attempt"]) == (
        "FAILED", "Stopped by user", 2)
    assert [(a["attempt"], a["status"], a["error"]) for a in stopped.body["attempts"]] == [
        (1, "FAILED", "flaky source")]
    time.sleep(2.5)  # past the backoff: no attempt 2 is dispatched, no attempt 3 scheduled
    assert get_run(run["id"], tenant.api_key) == stopped.body
    history = _events(run["id"], tenant.api_key)
    assert [e["attempt"] for e in _of_type(history, "dispatched")] == [1]
    assert [(e["attempt"], e["detail"]["reason"]) for e in _of_type(history, "failed")] == [
        (1, "callback"), (2, "stopped")]
    assert len(_of_type(history, "retry_scheduled")) == 1
    # A retry by hand starts attempt 3 and keeps both earlier attempts.
    retried = call_api("POST", f"/v1/workflow-runs/{run['id']}/retry", api_key=tenant.api_key)
    assert retried.status == 202, retried.body
    assert (retried.body["status"], retried.body["attempt"]) == ("PENDING", 3)
    assert [(a["attempt"], a["status"], a["error"]) for a in retried.body["attempts"]] == [
        (1, "FAILED", "flaky source"), (2, "FAILED", "Stopped by user")]
    _wait_status(tenant, run["id"], "RUNNING", attempt=3)


# ---------------------------------------------------------------------------------------------------------------
# Heartbeats


def test_a_signed_heartbeat_records_progress_without_touching_updated_at(
        tenant: CreatedTenant, running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    before = get_run(run["id"], tenant.api_key)
    response = _heartbeat(run["id"], {"progress": 42.6, "message": "reading sources"})
    assert (response.status, response.body) == (200, {"status": "RUNNING"})
    after = get_run(run["id"], tenant.api_key)
    assert (after["progress"], after["progress_message"]) == (43, "reading sources")
    assert isinstance(after["progress"], int)
    assert after["last_heartbeat_at"] is not None and after["last_heartbeat_at"] >= before["started_at"]
    assert after["updated_at"] == before["updated_at"]
    assert after["status"] == "RUNNING"
    assert WorkflowRunResponse.from_dict(after) is not None
    beats = _of_type(_events(run["id"], tenant.api_key), "heartbeat")
    assert [(e["attempt"], e["detail"]["progress"]) for e in beats] == [(1, 43)]
    # A message alone keeps the progress and updates the message.
    assert _heartbeat(run["id"], {"message": "writing outputs"}).status == 200
    latest = get_run(run["id"], tenant.api_key)
    assert (latest["progress"], latest["progress_message"]) == (43, "writing outputs")
    assert latest["last_heartbeat_at"] >= after["last_heartbeat_at"]
    assert latest["updated_at"] == before["updated_at"]


def test_bad_heartbeat_bodies_are_422_and_change_nothing(
        tenant: CreatedTenant, running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    cases: list[tuple[str, str]] = [
        (json.dumps({"progress": 101}), "progress"),
        (json.dumps({"progress": -1}), "progress"),
        (json.dumps({"progress": 100.5}), "progress"),
        (json.dumps({"progress": "half"}), "progress"),
        (json.dumps({"message": "m" * 1025}), "message"),
        (json.dumps({"progress": 5, "eta_seconds": 30}), "eta_seconds"),
    ]
    for body, field in cases:
        response = _heartbeat(run["id"], raw_body=body)
        assert response.status == 422, (body[:40], response.body)
        detail = response.body["detail"]
        assert isinstance(detail, list) and any(entry["loc"][-1] == field for entry in detail), detail
    for body in ("not json", "[1]", '{"progress": NaN}', '{"progress": Infinity}'):
        response = _heartbeat(run["id"], raw_body=body)
        assert response.status == 422, (body, response.body)
    after = get_run(run["id"], tenant.api_key)
    assert (after["progress"], after["progress_message"], after["last_heartbeat_at"]) == (None, None, None)
    assert not _of_type(_events(run["id"], tenant.api_key), "heartbeat")
    # The limits themselves are accepted.
    assert _heartbeat(run["id"], {"progress": 100, "message": "m" * 1024}).status == 200
    assert _heartbeat(run["id"], {"progress": 0}).status == 200
    assert get_run(run["id"], tenant.api_key)["progress"] == 0
    # A boolean is not a number: `true` must not become 1 %.
    boolean = _heartbeat(run["id"], raw_body='{"progress": true}')
    assert boolean.status == 422, boolean.body
    assert get_run(run["id"], tenant.api_key)["progress"] == 0


def test_heartbeat_authentication(tenant: CreatedTenant, other_tenant: CreatedTenant,
                                  running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    refused = [
        ("no credentials", _heartbeat(run["id"], {"progress": 10}, secret=None)),
        ("wrong secret", _heartbeat(run["id"], {"progress": 10}, secret=OTHER_SECRET)),
        ("not a key", _heartbeat(run["id"], {"progress": 10}, secret=None, api_key="sk-not-a-key")),
    ]
    for what, response in refused:
        assert response.status == 401, (what, response.body)
        assert isinstance(response.body["detail"], str)
    assert _heartbeat(run["id"], {"progress": 10}, secret=None, api_key=other_tenant.api_key).status == 404
    assert get_run(run["id"], tenant.api_key)["progress"] is None
    accepted = _heartbeat(run["id"], {"progress": 20}, secret=None, api_key=tenant.api_key)
    assert (accepted.status, accepted.body) == (200, {"status": "RUNNING"})
    assert get_run(run["id"], tenant.api_key)["progress"] == 20


def test_heartbeats_for_ended_runs_or_other_attempts_are_409(
        tenant: CreatedTenant, running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    for query in ("?attempt=2", "?attempt=7"):
        stale = _heartbeat(run["id"], {"progress": 50}, query=query)
        assert stale.status == 409, (query, stale.body)
    assert get_run(run["id"], tenant.api_key)["progress"] is None
    current = _heartbeat(run["id"], {"progress": 50}, query="?attempt=1")
    assert (current.status, current.body) == (200, {"status": "RUNNING"})
    assert callback(run["id"], {"status": "COMPLETED"}).status == 200
    completed = get_run(run["id"], tenant.api_key)
    for query in ("", "?attempt=1"):
        late = _heartbeat(run["id"], {"progress": 90}, query=query)
        assert late.status == 409, (query, late.body)
        assert "COMPLETED" in late.body["detail"]
    assert get_run(run["id"], tenant.api_key) == completed
    assert completed["progress"] == 50


def test_attempt_query_parameter_must_be_a_positive_integer(
        tenant: CreatedTenant, running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    for query in ("?attempt=abc", "?attempt=0", "?attempt=-1", "?attempt=1.5"):
        for response in (_callback_at(run["id"], {"status": "COMPLETED"}, query),
                         _heartbeat(run["id"], {"progress": 5}, query=query)):
            assert response.status == 422, (query, response.body)
            assert any(entry["loc"] == ["query", "attempt"] for entry in response.body["detail"]), response.body
    after = get_run(run["id"], tenant.api_key)
    assert (after["status"], after["progress"]) == ("RUNNING", None)


def test_a_repeated_heartbeat_is_a_no_op_and_a_replay_to_another_run_is_401(
        tenant: CreatedTenant, silent_runner: Runner, create_definition: Callable[..., dict[str, Any]],
        running: Callable[..., dict[str, Any]]) -> None:
    definition = create_definition(silent_runner.url)
    run_a, run_b = running(definition), running(definition)
    body = json.dumps({"progress": 30, "message": "a third"})
    headers = signed(body)
    for _ in range(2):
        response = _heartbeat(run_a["id"], raw_body=body, headers=headers)
        assert (response.status, response.body) == (200, {"status": "RUNNING"})
    assert len(_of_type(_events(run_a["id"], tenant.api_key), "heartbeat")) == 1
    replayed = _heartbeat(run_b["id"], raw_body=body, headers=headers)
    assert replayed.status == 401, replayed.body
    other = get_run(run_b["id"], tenant.api_key)
    assert (other["progress"], other["last_heartbeat_at"]) == (None, None)
    assert not _of_type(_events(run_b["id"], tenant.api_key), "heartbeat")
    # The same message id freshly signed for run B is refused too; its own message is accepted.
    assert _heartbeat(run_b["id"], {"progress": 30}, message_id=headers["webhook-id"]).status == 401
    assert _heartbeat(run_b["id"], {"progress": 30}).status == 200


def test_progress_events_coalesce_and_are_capped(tenant: CreatedTenant, running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    for _ in range(3):
        assert _heartbeat(run["id"], {"progress": 7}, secret=None, api_key=tenant.api_key).status == 200
    assert _heartbeat(run["id"], {"message": "no progress"}, secret=None, api_key=tenant.api_key).status == 200
    assert len(_of_type(_events(run["id"], tenant.api_key), "heartbeat")) == 1
    # 104 more changes, alternating between two values: every one a change, the history capped.
    for index in range(104):
        response = _heartbeat(run["id"], {"progress": 8 + index % 2}, secret=None, api_key=tenant.api_key)
        assert response.status == 200, response.body
    final = _heartbeat(run["id"], {"progress": 77, "message": "past the cap"}, secret=None, api_key=tenant.api_key)
    assert final.status == 200
    beats = _of_type(_events(run["id"], tenant.api_key), "heartbeat")
    assert len(beats) == 100
    assert [e["detail"]["progress"] for e in beats[:3]] == [7, 8, 9]
    after = get_run(run["id"], tenant.api_key)
    assert (after["progress"], after["progress_message"]) == (77, "past the cap")


def test_a_heartbeat_costs_at_most_four_aws_calls(
        tenant: CreatedTenant, running: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    run = running()
    assert _heartbeat(run["id"], {"progress": 1}).status == 200  # a warm Lambda: caches filled
    calls: list[str] = []
    me = threading.get_ident()
    make_api_call = botocore.client.BaseClient._make_api_call

    def counted(self: Any, operation_name: str, api_params: Any) -> Any:
        if threading.get_ident() == me:
            calls.append(f"{self.meta.service_model.service_name}:{operation_name}")
        return make_api_call(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counted)
    response = _heartbeat(run["id"], {"progress": 2, "message": "counted"})
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
    assert response.status == 200, response.body
    assert calls and len(calls) <= 4, calls
    assert "stepfunctions:SendTaskHeartbeat" in calls, calls


# ---------------------------------------------------------------------------------------------------------------
# Four-byte characters at the limits


def test_a_heartbeat_message_of_1024_four_byte_characters_is_kept_whole(
        tenant: CreatedTenant, running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    too_long = _heartbeat(run["id"], {"progress": 5, "message": EMOJI * 1025})
    assert too_long.status == 422, too_long.body
    message = EMOJI * 1024
    assert _heartbeat(run["id"], {"progress": 5, "message": message}).status == 200
    after = get_run(run["id"], tenant.api_key)
    assert after["progress_message"] == message
    beats = _of_type(_events(run["id"], tenant.api_key), "heartbeat")
    assert [e["detail"]["message"] for e in beats] == [message]


def test_a_long_four_byte_error_is_cut_in_attempts_and_whole_in_the_failed_event(
        tenant: CreatedTenant, silent_runner: Runner, create_definition: Callable[..., dict[str, Any]],
        running: Callable[..., dict[str, Any]]) -> None:
    definition = create_definition(silent_runner.url, retry_policy={"max_attempts": 2, "backoff_seconds": 2})
    run = running(definition)
    error = EMOJI * 8192
    response = callback(run["id"], {"status": "FAILED", "error": error})
    assert (response.status, response.body) == (200, {"status": "PENDING"})
    # Waiting out the backoff, attempt 2 is not dispatched yet: no heartbeat for it, none for attempt 1.
    for query in ("", "?attempt=2", "?attempt=1"):
        early = _heartbeat(run["id"], {"progress": 1}, query=query)
        assert early.status == 409, (query, early.body)
    pending = get_run(run["id"], tenant.api_key)
    assert (pending["status"], pending["attempt"], pending["error"], pending["progress"]) == ("PENDING", 2, None, None)
    [first] = pending["attempts"]
    assert (first["attempt"], first["status"]) == (1, "FAILED")
    cut = first["error"]
    assert cut.endswith(ELLIPSIS) and len(cut) < len(error)
    assert cut[:-1] == error[:len(cut) - 1]  # whole characters only, no broken surrogate
    assert WorkflowRunResponse.from_dict(pending) is not None
    history = _events(run["id"], tenant.api_key)
    [failed] = _of_type(history, "failed")
    assert failed["attempt"] == 1 and failed["detail"]["error"] == error
    assert (failed["detail"]["reason"], failed["detail"]["retrying"]) == ("callback", True)
    [scheduled] = _of_type(history, "retry_scheduled")
    assert scheduled["attempt"] == 2 and scheduled["detail"]["wait_seconds"] == 2
    [reported] = _of_type(history, "callback")
    assert reported["detail"]["error"] == error
    # The policy's attempt 2 is dispatched after the backoff.
    _wait_status(tenant, run["id"], "RUNNING", attempt=2)


# ---------------------------------------------------------------------------------------------------------------
# Run events


def test_events_of_a_completed_run(aws_env: dict[str, str], tenant: CreatedTenant, other_tenant: CreatedTenant,
                                   running: Callable[..., dict[str, Any]]) -> None:
    run = running(body={"idempotency_key": "nightly-1"})
    assert callback(run["id"], {"status": "COMPLETED"}).status == 200
    assert execution_status(aws_env, run["workflow_id"]) == "SUCCEEDED"
    history = _events(run["id"], tenant.api_key)
    assert [e["type"] for e in history] == ["created", "dispatch_attempt", "dispatched", "callback", "completed"]
    assert all(e["attempt"] == 1 for e in history)
    assert [e["at"] for e in history] == sorted(e["at"] for e in history)
    assert len({e["id"] for e in history}) == len(history)
    created, attempt, _, reported, _ = history
    assert created["detail"]["invoked_by"] == tenant.user_id
    assert created["detail"]["idempotency_key"] == "nightly-1"
    assert isinstance(attempt["detail"]["status"], int) and 200 <= attempt["detail"]["status"] < 300
    assert isinstance(attempt["detail"]["duration_ms"], int) and attempt["detail"]["duration_ms"] >= 0
    assert (reported["detail"]["status"], reported["detail"]["authenticated_by"]) == ("COMPLETED", "signature")

    page = call_api("GET", f"/v1/workflow-runs/{run['id']}/events?limit=2&offset=1", api_key=tenant.api_key)
    assert page.status == 200, page.body
    assert (page.body["total"], page.body["limit"], page.body["offset"]) == (5, 2, 1)
    assert page.body["items"] == history[1:3]
    tail = call_api("GET", f"/v1/workflow-runs/{run['id']}/events?limit=2&offset=4", api_key=tenant.api_key).body
    assert (tail["items"], tail["total"]) == (history[4:], 5)
    beyond = call_api("GET", f"/v1/workflow-runs/{run['id']}/events?offset=9", api_key=tenant.api_key).body
    assert (beyond["items"], beyond["total"]) == ([], 5)
    for query in ("limit=0", "limit=101", "offset=-1"):
        bad = call_api("GET", f"/v1/workflow-runs/{run['id']}/events?{query}", api_key=tenant.api_key)
        assert bad.status == 422, (query, bad.body)
    assert call_api("GET", f"/v1/workflow-runs/{run['id']}/events", api_key=other_tenant.api_key).status == 404

    # An event that commits between the read of the run and the query of its history (a writer racing this
    # page: simulated by an event item the run's count does not include yet) stays out of the page, so the
    # page never holds more events than its total.
    table = aws.table(os.environ["TABLE_NAME"])
    table.put_item(Item={"pk": f"RUN#{run['id']}", "sk": "EVENT#9999-12-31T00:00:00.000000Z#00late",
                         "id": str(uuid.uuid4()), "type": "heartbeat", "at": "9999-12-31T00:00:00Z",
                         "attempt": 1, "detail": {}})
    racing = call_api("GET", f"/v1/workflow-runs/{run['id']}/events?limit=100", api_key=tenant.api_key).body
    assert (racing["items"], racing["total"]) == (history, 5)

    # Deleting the run removes its history.
    assert call_api("DELETE", f"/v1/workflow-runs/{run['id']}", api_key=tenant.api_key).status == 204
    left = table.query(KeyConditionExpression=Key("pk").eq(f"RUN#{run['id']}") & Key("sk").begins_with("EVENT#"))
    assert left["Items"] == []
    assert call_api("GET", f"/v1/workflow-runs/{run['id']}/events", api_key=tenant.api_key).status == 404


def test_an_api_key_callback_is_recorded_as_such(tenant: CreatedTenant,
                                                 running: Callable[..., dict[str, Any]]) -> None:
    run = running()
    assert callback(run["id"], {"status": "FAILED", "error": "gave up"}, secret=None,
                    api_key=tenant.api_key).status == 200
    history = _events(run["id"], tenant.api_key)
    assert [e["type"] for e in history][-2:] == ["callback", "failed"]
    reported, failed = history[-2:]
    assert reported["detail"] == {"status": "FAILED", "error": "gave up", "authenticated_by": "api_key"}
    assert (failed["detail"]["reason"], failed["detail"]["error"]) == ("callback", "gave up")
    assert "retrying" not in failed["detail"]
