"""A run's lifecycle through the real run state machine in moto: stop, retry by hand, the retry policy,
heartbeats and stale attempts, as a user and a runner observe them (the API, the runner's own requests)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from ksflow.identity.models import CreatedTenant
from ksflow.runner import client, example
from ksflow.workflows import webhooks
from tests.conftest import RUNNER_SECRET, Response, call_api, definition_body, shorten_time_limit, wait_for

# ---------------------------------------------------------------------------------------------------------------
# A scripted runner: verifies each dispatch, answers as told, and may report back as a real runner does.


@dataclass(frozen=True)
class Answer:
    """How the runner answers one dispatch POST: after `delay` seconds with `status`; then, if `report`
    is set, it calls back that status `report_after` seconds later through the dispatch's callback URL."""

    status: int = 202
    delay: float = 0.0
    report: str | None = None
    report_after: float = 0.1


@dataclass
class Received:
    dispatch: client.Dispatch
    headers: dict[str, str]
    payload: dict[str, Any]


@dataclass
class ScriptedRunner:
    url: str
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)

    def dispatches(self) -> int:
        return len(self.received)


def _start_scripted_runner(script: list[Answer]) -> tuple[ScriptedRunner, ThreadingHTTPServer]:
    lock = threading.Lock()
    runner: ScriptedRunner

    def report(dispatch: client.Dispatch, answer: Answer) -> None:
        time.sleep(answer.report_after)
        reporter = client.RunReporter(dispatch, RUNNER_SECRET)
        try:
            outcome = reporter.complete() if answer.report == "COMPLETED" else reporter.fail("Scripted failure")
            runner.reports.append(f"{dispatch.attempt}: {outcome}")
        except client.ReportFailed as refused:
            runner.reports.append(f"{dispatch.attempt}: HTTP {refused.status}")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                dispatch = client.verify_dispatch(RUNNER_SECRET, self.headers, raw)
            except client.InvalidDispatch as error:
                runner.rejected.append(str(error))
                self._answer(error.http_status)
                return
            with lock:
                answer = script[min(len(runner.received), len(script) - 1)]
                runner.received.append(Received(dispatch, {k.lower(): v for k, v in self.headers.items()},
                                                json.loads(raw)))
            time.sleep(answer.delay)
            self._answer(answer.status)
            if answer.report and 200 <= answer.status < 300:
                threading.Thread(target=report, args=(dispatch, answer), daemon=True).start()

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    runner = ScriptedRunner(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return runner, server


def _reports(runner: ScriptedRunner, count: int) -> list[str]:
    """The runner's record of its reports, once it holds `count`: it writes each down only after the
    API's answer reached it, which can be after the run's new status is already readable."""
    wait_for(lambda: len(runner.reports) >= count, timeout=10)
    return runner.reports


@pytest.fixture
def scripted_runner() -> Iterator[Callable[..., ScriptedRunner]]:
    servers: list[ThreadingHTTPServer] = []

    def start(*script: Answer) -> ScriptedRunner:
        runner, server = _start_scripted_runner(list(script) or [Answer()])
        servers.append(server)
        return runner

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def heartbeating_runner() -> Iterator[Callable[..., str]]:
    """The example runner with heartbeats (`ksflow example-runner --heartbeat-every S`); returns its URL."""
    servers: list[Any] = []

    def start(*, heartbeat_every: float, delay: float) -> str:
        server = example.make_server("127.0.0.1", 0, RUNNER_SECRET, delay=delay, fail=False, log=lambda _: None,
                                     heartbeat_every=heartbeat_every)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------------------------
# Helpers: the API as a user calls it, and the executions as Step Functions records them.


def _create(tenant: CreatedTenant, body: dict[str, Any]) -> str:
    created = call_api("POST", "/v1/workflow-definitions", body, tenant.api_key)
    assert created.status == 201, created.body
    return str(created.body["id"])


def _invoke(tenant: CreatedTenant, definition_id: str) -> dict[str, Any]:
    invoked = call_api("POST", f"/v1/workflow-definitions/{definition_id}/invoke", {}, tenant.api_key)
    assert invoked.status == 202, invoked.body
    return dict(invoked.body)


def _get(tenant: CreatedTenant, run_id: str) -> dict[str, Any]:
    response = call_api("GET", f"/v1/workflow-runs/{run_id}", api_key=tenant.api_key)
    assert response.status == 200, response.body
    return dict(response.body)


def _final(tenant: CreatedTenant, run_id: str, timeout: float = 20) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        run = _get(tenant, run_id)
        return run if run["status"] in ("COMPLETED", "FAILED") else None

    return dict(wait_for(ended, timeout=timeout))


def _events(tenant: CreatedTenant, run_id: str) -> tuple[list[dict[str, Any]], int]:
    response = call_api("GET", f"/v1/workflow-runs/{run_id}/events?limit=100", api_key=tenant.api_key)
    assert response.status == 200, response.body
    return list(response.body["items"]), int(response.body["total"])


def _of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


def _execution_arn(env: dict[str, str], name: str) -> str:
    return env["RUN_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + ":" + name


def _execution_status(env: dict[str, str], name: str) -> str:
    return str(boto3.client("stepfunctions").describe_execution(executionArn=_execution_arn(env, name))["status"])


def _ended_execution(env: dict[str, str], name: str, timeout: float = 20) -> tuple[str, list[dict[str, Any]]]:
    """Waits for the execution to end: its status and history."""
    wait_for(lambda: _execution_status(env, name) != "RUNNING", timeout=timeout)
    history = boto3.client("stepfunctions").get_execution_history(executionArn=_execution_arn(env, name))
    return _execution_status(env, name), list(history["events"])


def _states_entered(env: dict[str, str], name: str) -> list[str]:
    history = boto3.client("stepfunctions").get_execution_history(executionArn=_execution_arn(env, name))
    return [e["stateEnteredEventDetails"]["name"] for e in history["events"] if e["type"].endswith("StateEntered")]


def _entered(history: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def _signed(payload: dict[str, Any], message_id: str | None = None) -> tuple[str, dict[str, str]]:
    body = json.dumps(payload)
    return body, webhooks.sign_headers(RUNNER_SECRET, message_id or f"msg_{uuid.uuid4().hex}", datetime.now(UTC),
                                       body)


def _post_signed(path: str, body: str, headers: dict[str, str]) -> Response:
    return call_api("POST", path, headers=headers, raw_body=body)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _schedules(env: dict[str, str]) -> list[str]:
    found = boto3.client("scheduler").list_schedules(GroupName=env["SCHEDULER_GROUP_NAME"])["Schedules"]
    return [schedule["Name"] for schedule in found]


RETRY_STATES = ["FailRun", "NextAttemptOrEnd", "WaitBeforeRedispatch", "DispatchAndAwaitCallback"]


# ---------------------------------------------------------------------------------------------------------------
# 1. Stop while the dispatch is under way.


@pytest.mark.parametrize("during", ["slow_answer", "redispatch_backoff"])
def test_stop_during_dispatch_ends_the_run_and_its_execution_with_no_further_post(
        aws_env: dict[str, str], tenant: CreatedTenant, knowledge: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        scripted_runner: Callable[..., ScriptedRunner], during: str) -> None:
    if during == "slow_answer":
        runner = scripted_runner(Answer(202, delay=2))  # stopped while the dispatcher still waits on the answer
    else:
        monkeypatch.setattr("ksflow.orchestration.dispatcher.MIN_BACKOFF_SECONDS", 3)
        runner = scripted_runner(Answer(503))  # stopped while the dispatcher waits before the next POST
    run = _invoke(tenant, _create(tenant, definition_body(knowledge, runner.url)))
    wait_for(lambda: runner.dispatches() == 1, timeout=10)
    if during == "redispatch_backoff":
        wait_for(lambda: "WaitBeforeRedispatch" in _states_entered(aws_env, run["workflow_id"]), timeout=10)

    stopped = call_api("POST", f"/v1/workflow-runs/{run['id']}/stop", api_key=tenant.api_key)
    assert stopped.status == 200, stopped.body
    assert stopped.body["status"] == "FAILED" and stopped.body["error"] == "Stopped by user"

    # Once the execution ended no dispatch step is left that could POST (its Lambda has returned).
    assert _ended_execution(aws_env, run["workflow_id"])[0] != "RUNNING"
    time.sleep(0.2)
    assert runner.dispatches() == 1
    final = _get(tenant, run["id"])
    assert (final["status"], final["error"], final["attempt"]) == ("FAILED", "Stopped by user", 1)
    assert final["completed_at"] is not None
    again = call_api("POST", f"/v1/workflow-runs/{run['id']}/stop", api_key=tenant.api_key)
    assert again.status == 409
    execution = call_api("GET", f"/v1/workflows/{run['workflow_id']}", api_key=tenant.api_key).body
    assert execution["execution_status"] == "CANCELED"

    events, total = _events(tenant, run["id"])
    assert total == len(events)
    outcomes = [event for event in events if event["type"] in ("failed", "completed", "dispatched")]
    assert [(e["type"], e["detail"].get("reason")) for e in outcomes] == [("failed", "stopped")]
    assert outcomes[0]["detail"]["error"] == "Stopped by user"
    # Nothing but the record of the POST that was already under way may follow the stop.
    after = events[events.index(outcomes[0]) + 1:]
    assert all(event["type"] == "dispatch_attempt" for event in after), after
    assert len(_of_type(events, "dispatch_attempt")) == 1
    assert _schedules(aws_env) == []


# ---------------------------------------------------------------------------------------------------------------
# 2. Retry by hand.


def _retry(tenant: CreatedTenant, run_id: str) -> dict[str, Any]:
    retried = call_api("POST", f"/v1/workflow-runs/{run_id}/retry", api_key=tenant.api_key)
    assert retried.status == 202, retried.body
    assert retried.headers.get("Location", retried.headers.get("location", "")).endswith(f"/v1/workflow-runs/{run_id}")
    return dict(retried.body)


def test_retry_after_the_dispatch_gave_up_runs_a_second_attempt_to_completion(
        aws_env: dict[str, str], api_server: str, tenant: CreatedTenant, knowledge: dict[str, str],
        scripted_runner: Callable[..., ScriptedRunner]) -> None:
    runner = scripted_runner(Answer(400), Answer(202, report="COMPLETED"))
    run = _invoke(tenant, _create(tenant, definition_body(knowledge, runner.url)))
    failed = _final(tenant, run["id"])
    assert (failed["status"], failed["error"], failed["attempt"]) == ("FAILED", "Runner answered HTTP 400", 1)
    assert _ended_execution(aws_env, run["workflow_id"])[0] == "SUCCEEDED"

    retried = _retry(tenant, run["id"])
    assert (retried["status"], retried["attempt"], retried["error"], retried["completed_at"]) == (
        "PENDING", 2, None, None)
    assert [(a["attempt"], a["status"], a["error"]) for a in retried["attempts"]] == [
        (1, "FAILED", "Runner answered HTTP 400")]
    assert retried["started_at"] > failed["started_at"]

    final = _final(tenant, run["id"])
    assert final["status"] == "COMPLETED", final
    assert final["attempt"] == 2 and final["error"] is None
    assert [(a["attempt"], a["status"]) for a in final["attempts"]] == [(1, "FAILED")]
    assert _reports(runner, 1) == ["2: COMPLETED"]

    first, second = runner.received
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    assert (first.payload["attempt"], second.payload["attempt"]) == (1, 2)
    assert first.dispatch.callback_url.endswith(f"/v1/workflow-runs/{run['id']}/callback?attempt=1")
    assert second.dispatch.callback_url.endswith(f"/v1/workflow-runs/{run['id']}/callback?attempt=2")
    assert second.dispatch.heartbeat_url.endswith(f"/v1/workflow-runs/{run['id']}/heartbeat?attempt=2")
    assert second.payload["run"]["attempt"] == 2
    assert second.dispatch.deadline > first.dispatch.deadline

    # The second attempt is its own execution, which completed in a single state.
    status, history = _ended_execution(aws_env, f"{run['workflow_id']}-2")
    assert status == "SUCCEEDED" and _entered(history) == ["DispatchAndAwaitCallback"]
    events, _ = _events(tenant, run["id"])
    assert [e["type"] for e in events] == ["created", "dispatch_attempt", "failed", "retried", "dispatch_attempt",
                                           "dispatched", "callback", "completed"]
    assert [e["attempt"] for e in events] == [1, 1, 1, 2, 2, 2, 2, 2]
    assert _of_type(events, "failed")[0]["detail"]["reason"] == "dispatch"
    assert _of_type(events, "retried")[0]["detail"]["by"] == tenant.user_id
    assert _schedules(aws_env) == []


def test_retry_after_the_time_limit_gets_a_fresh_time_limit(
        aws_env: dict[str, str], api_server: str, tenant: CreatedTenant, knowledge: dict[str, str],
        scripted_runner: Callable[..., ScriptedRunner]) -> None:
    # As the other flow tests do: the stored definition's limit is shortened below the API's 60 s minimum.
    runner = scripted_runner(Answer(202), Answer(202, report="COMPLETED", report_after=0.5))
    definition_id = _create(tenant, definition_body(knowledge, runner.url))
    shorten_time_limit(tenant, definition_id, 3)
    run = _invoke(tenant, definition_id)
    failed = _final(tenant, run["id"])
    assert failed["status"] == "FAILED" and "exceeded its time limit of 3 seconds" in failed["error"]
    _ended_execution(aws_env, run["workflow_id"])

    _retry(tenant, run["id"])
    final = _final(tenant, run["id"])
    assert final["status"] == "COMPLETED", final
    assert final["attempt"] == 2
    assert [(a["attempt"], a["status"]) for a in final["attempts"]] == [(1, "FAILED")]
    assert "exceeded its time limit of 3 seconds" in final["attempts"][0]["error"]
    assert _reports(runner, 1) == ["2: COMPLETED"]
    first, second = runner.received
    assert second.payload["attempt"] == 2 and first.headers["webhook-id"] != second.headers["webhook-id"]
    assert _of_type(_events(tenant, run["id"])[0], "failed")[0]["detail"]["reason"] == "timeout"
    assert _ended_execution(aws_env, f"{run['workflow_id']}-2")[0] == "SUCCEEDED"


# ---------------------------------------------------------------------------------------------------------------
# 3. The retry policy, until its attempts run out.


def test_policy_retries_until_its_attempts_are_exhausted(
        aws_env: dict[str, str], api_server: str, tenant: CreatedTenant, knowledge: dict[str, str],
        scripted_runner: Callable[..., ScriptedRunner]) -> None:
    runner = scripted_runner(Answer(202, report="FAILED", report_after=0.2))
    policy = {"max_attempts": 3, "backoff_seconds": 1, "backoff_multiplier": 1}
    run = _invoke(tenant, _create(tenant, definition_body(knowledge, runner.url, retry_policy=policy)))

    seen: list[dict[str, Any]] = []

    def observe() -> dict[str, Any] | None:
        current = _get(tenant, run["id"])
        seen.append(current)
        return current if current["status"] == "FAILED" else None

    final = wait_for(observe, timeout=30, interval=0.05)
    assert final["attempt"] == 3 and final["error"] == "Scripted failure"
    assert [(a["attempt"], a["status"], a["error"]) for a in final["attempts"]] == [
        (1, "FAILED", "Scripted failure"), (2, "FAILED", "Scripted failure")]
    assert runner.dispatches() == 3
    assert [r.payload["attempt"] for r in runner.received] == [1, 2, 3]
    assert len({r.headers["webhook-id"] for r in runner.received}) == 3
    assert all(r.dispatch.callback_url.endswith(f"?attempt={r.payload['attempt']}") for r in runner.received)
    assert _reports(runner, 3) == ["1: PENDING", "2: PENDING", "3: FAILED"]

    # While a retry waited out its backoff, the run was PENDING with the failed attempt in `attempts`.
    waiting = [r for r in seen if r["status"] == "PENDING" and r["attempts"]]
    assert waiting, [(r["status"], r["attempt"]) for r in seen]
    assert all(r["attempt"] == len(r["attempts"]) + 1 and r["attempts"][-1]["status"] == "FAILED"
               and r["error"] is None and r["completed_at"] is None for r in waiting)
    assert {r["attempt"] for r in waiting} <= {2, 3}

    events, total = _events(tenant, run["id"])
    assert total == len(events)
    scheduled = _of_type(events, "retry_scheduled")
    assert [(e["attempt"], e["detail"]["wait_seconds"]) for e in scheduled] == [(2, 1), (3, 1)]
    failures = _of_type(events, "failed")
    assert [(e["attempt"], e["detail"]["reason"], e["detail"].get("retrying")) for e in failures] == [
        (1, "callback", True), (2, "callback", True), (3, "callback", None)]
    assert [e["attempt"] for e in _of_type(events, "dispatched")] == [1, 2, 3]
    assert events[-1]["type"] == "failed"

    status, history = _ended_execution(aws_env, run["workflow_id"])
    assert status == "SUCCEEDED"
    # Each policy retry costs four states: FailRun, NextAttemptOrEnd, WaitBeforeRedispatch and the dispatch.
    assert _entered(history) == ["DispatchAndAwaitCallback"] + RETRY_STATES * 2
    assert _schedules(aws_env) == []


# ---------------------------------------------------------------------------------------------------------------
# 4. Heartbeats.


def test_heartbeat_timeout_fails_a_silent_runner_while_a_heartbeating_one_completes(
        aws_env: dict[str, str], api_server: str, tenant: CreatedTenant, knowledge: dict[str, str],
        scripted_runner: Callable[..., ScriptedRunner], heartbeating_runner: Callable[..., str]) -> None:
    silent = scripted_runner(Answer(202))  # accepts, then neither heartbeats nor calls back
    beating_url = heartbeating_runner(heartbeat_every=2, delay=15)
    silent_definition = _create(tenant, definition_body(knowledge, silent.url, heartbeat_timeout_seconds=10))
    beating_definition = _create(tenant, {**definition_body(knowledge, beating_url, heartbeat_timeout_seconds=10),
                                          "name": "Summarise with heartbeats"})
    started = time.monotonic()
    silent_run = _invoke(tenant, silent_definition)
    beating_run = _invoke(tenant, beating_definition)

    progressing = wait_for(lambda: (r := _get(tenant, beating_run["id"]))["status"] == "RUNNING"
                           and (r["progress"] or 0) > 0 and r, timeout=10)
    assert progressing["last_heartbeat_at"] is not None
    assert progressing["progress_message"] == "waiting 15s before reporting COMPLETED"

    failed = _final(tenant, silent_run["id"], timeout=25)
    failed_after = time.monotonic() - started
    assert failed["status"] == "FAILED"
    assert failed["error"] == ("The runner stopped sending heartbeats: none for 10 seconds "
                               "(heartbeat_timeout_seconds)")
    assert "time limit" not in failed["error"]
    assert 9 <= failed_after <= 20, failed_after
    assert failed["progress"] is None and failed["last_heartbeat_at"] is None
    silent_failures = _of_type(_events(tenant, silent_run["id"])[0], "failed")
    assert [(e["detail"]["reason"], e["detail"].get("retrying")) for e in silent_failures] == [
        ("heartbeat_timeout", None)]
    execution = call_api("GET", f"/v1/workflows/{silent_run['workflow_id']}", api_key=tenant.api_key).body
    assert execution["execution_status"] == "TIMED_OUT"
    assert silent.dispatches() == 1

    # The heartbeating runner outlived the 10 s heartbeat timeout.
    assert _get(tenant, beating_run["id"])["status"] == "RUNNING"
    completed = _final(tenant, beating_run["id"], timeout=20)
    assert completed["status"] == "COMPLETED", completed
    assert time.monotonic() - started >= 15
    assert completed["progress"] is not None and completed["progress"] >= 50
    assert completed["last_heartbeat_at"] is not None
    events, _ = _events(tenant, beating_run["id"])
    beats = _of_type(events, "heartbeat")
    assert len(beats) >= 4, [e["type"] for e in events]
    progresses = [e["detail"]["progress"] for e in beats]
    assert progresses == sorted(progresses) and len(set(progresses)) == len(progresses)
    assert [e["type"] for e in events][-2:] == ["callback", "completed"]
    # Heartbeats cost no state transitions: the happy path is still a single state.
    status, history = _ended_execution(aws_env, beating_run["workflow_id"])
    assert status == "SUCCEEDED" and _entered(history) == ["DispatchAndAwaitCallback"]
    _ended_execution(aws_env, silent_run["workflow_id"])


# ---------------------------------------------------------------------------------------------------------------
# 5. Messages from an attempt the run has moved past.


def test_callbacks_from_a_stale_attempt_change_nothing(
        aws_env: dict[str, str], api_server: str, tenant: CreatedTenant, knowledge: dict[str, str],
        scripted_runner: Callable[..., ScriptedRunner]) -> None:
    runner = scripted_runner(Answer(202))  # reports nothing itself: the test speaks for it
    policy = {"max_attempts": 2, "backoff_seconds": 1, "backoff_multiplier": 1}
    run = _invoke(tenant, _create(tenant, definition_body(knowledge, runner.url, retry_policy=policy)))
    wait_for(lambda: _get(tenant, run["id"])["status"] == "RUNNING", timeout=10)
    first = runner.received[0].dispatch

    failure, failure_headers = _signed({"status": "FAILED", "error": "attempt 1 broke"})
    answered = _post_signed(_path(first.callback_url), failure, failure_headers)
    assert answered.status == 200 and answered.body == {"status": "PENDING"}
    wait_for(lambda: runner.dispatches() == 2 and _get(tenant, run["id"])["status"] == "RUNNING", timeout=10)
    second = runner.received[1].dispatch
    assert second.attempt == 2

    before, events_before = _get(tenant, run["id"]), _events(tenant, run["id"])[1]
    stale_completion, headers = _signed({"status": "COMPLETED"})
    refused = _post_signed(_path(first.callback_url), stale_completion, headers)
    assert refused.status == 409, refused.body
    assert "attempt 1" in refused.body["detail"].lower()
    # The same signed message as attempt 1's failure (same webhook-id), without `?attempt`.
    replayed = _post_signed(f"/v1/workflow-runs/{run['id']}/callback", failure, failure_headers)
    assert replayed.status == 409, replayed.body
    # Re-signed now, still the same message id: refused all the same.
    resigned_body, resigned = _signed({"status": "FAILED", "error": "attempt 1 broke"},
                                      message_id=failure_headers["webhook-id"])
    assert _post_signed(f"/v1/workflow-runs/{run['id']}/callback", resigned_body, resigned).status == 409
    beat, beat_headers = _signed({"progress": 50})
    assert _post_signed(_path(first.heartbeat_url), beat, beat_headers).status == 409

    after, events_after = _get(tenant, run["id"]), _events(tenant, run["id"])[1]
    assert after == before
    assert (after["status"], after["attempt"]) == ("RUNNING", 2)
    assert events_after == events_before

    completion, headers = _signed({"status": "COMPLETED"})
    assert _post_signed(_path(second.callback_url), completion, headers).status == 200
    final = _get(tenant, run["id"])
    assert final["status"] == "COMPLETED" and final["attempt"] == 2
    assert [(a["attempt"], a["status"], a["error"]) for a in final["attempts"]] == [(1, "FAILED", "attempt 1 broke")]
    assert _ended_execution(aws_env, run["workflow_id"])[0] == "SUCCEEDED"
    assert runner.dispatches() == 2


# ---------------------------------------------------------------------------------------------------------------
# 6. Stop while a policy retry waits out its backoff.


def test_stop_during_a_policy_backoff_ends_the_execution_without_dispatching_again(
        aws_env: dict[str, str], api_server: str, tenant: CreatedTenant, knowledge: dict[str, str],
        scripted_runner: Callable[..., ScriptedRunner]) -> None:
    runner = scripted_runner(Answer(202, report="FAILED"))
    policy = {"max_attempts": 3, "backoff_seconds": 30, "backoff_multiplier": 1}
    run = _invoke(tenant, _create(tenant, definition_body(knowledge, runner.url, retry_policy=policy)))
    wait_for(lambda: "WaitBeforeRedispatch" in _states_entered(aws_env, run["workflow_id"]), timeout=10)
    waiting = _get(tenant, run["id"])
    assert (waiting["status"], waiting["attempt"]) == ("PENDING", 2)
    assert [(a["attempt"], a["status"]) for a in waiting["attempts"]] == [(1, "FAILED")]

    stopped_at = time.monotonic()
    stopped = call_api("POST", f"/v1/workflow-runs/{run['id']}/stop", api_key=tenant.api_key)
    assert stopped.status == 200, stopped.body
    assert (stopped.body["status"], stopped.body["error"]) == ("FAILED", "Stopped by user")

    status, history = _ended_execution(aws_env, run["workflow_id"], timeout=5)
    assert time.monotonic() - stopped_at < 5
    assert status == "ABORTED", status  # StopExecution interrupts the Wait state
    assert _entered(history).count("DispatchAndAwaitCallback") == 1
    time.sleep(0.2)
    assert runner.dispatches() == 1
    final = _get(tenant, run["id"])
    assert (final["status"], final["error"], final["attempt"]) == ("FAILED", "Stopped by user", 2)
    assert [(a["attempt"], a["status"]) for a in final["attempts"]] == [(1, "FAILED")]
    events, _ = _events(tenant, run["id"])
    assert events[-1]["type"] == "failed" and events[-1]["attempt"] == 2
    assert events[-1]["detail"]["reason"] == "stopped"
    assert [e["attempt"] for e in _of_type(events, "dispatch_attempt")] == [1]
    assert _schedules(aws_env) == []



# ---------------------------------------------------------------------------------------------------------------
# The history's numbers, and the time limit's edge.


def test_event_details_keep_their_numbers(
        aws_env: dict[str, str], api_server: str, tenant: CreatedTenant, knowledge: dict[str, str],
        scripted_runner: Callable[..., ScriptedRunner]) -> None:
    runner = scripted_runner(Answer(202, report="FAILED"), Answer(202))
    policy = {"max_attempts": 2, "backoff_seconds": 1, "backoff_multiplier": 1}
    run = _invoke(tenant, _create(tenant, definition_body(knowledge, runner.url, retry_policy=policy)))
    wait_for(lambda: runner.dispatches() == 2 and _get(tenant, run["id"])["status"] == "RUNNING", timeout=10)
    second = runner.received[1].dispatch
    beat, headers = _signed({"progress": 42.4, "message": "reading"})
    answered = _post_signed(_path(second.heartbeat_url), beat, headers)
    assert answered.status == 200 and answered.body == {"status": "RUNNING"}
    running = _get(tenant, run["id"])
    assert (running["progress"], running["progress_message"]) == (42, "reading")
    total_before = _events(tenant, run["id"])[1]
    # The same heartbeat message again (a runner's retry) is accepted and recorded once.
    assert _post_signed(_path(second.heartbeat_url), beat, headers).status == 200
    assert _events(tenant, run["id"])[1] == total_before
    completion, headers = _signed({"status": "COMPLETED"})
    assert _post_signed(_path(second.callback_url), completion, headers).status == 200
    _ended_execution(aws_env, run["workflow_id"])

    events, _ = _events(tenant, run["id"])
    attempts = _of_type(events, "dispatch_attempt")
    assert [e["detail"]["status"] for e in attempts] == [202, 202]
    assert all(isinstance(e["detail"]["duration_ms"], int) for e in attempts), attempts
    assert [e["detail"]["wait_seconds"] for e in _of_type(events, "retry_scheduled")] == [1]
    assert [e["detail"]["progress"] for e in _of_type(events, "heartbeat")] == [42]


def test_a_callback_just_before_the_deadline_completes_the_run(
        aws_env: dict[str, str], api_server: str, tenant: CreatedTenant, knowledge: dict[str, str],
        scripted_runner: Callable[..., ScriptedRunner]) -> None:
    """No heartbeat timeout is configured, yet the task's heartbeat timer (the time limit less a second)
    must not end the attempt before its deadline: a runner may call back until then."""
    runner = scripted_runner(Answer(202))
    definition_id = _create(tenant, definition_body(knowledge, runner.url))
    shorten_time_limit(tenant, definition_id, 5)
    run = _invoke(tenant, definition_id)
    wait_for(lambda: runner.dispatches() == 1, timeout=5)
    dispatch = runner.received[0].dispatch
    time.sleep(max(0.0, (dispatch.deadline - datetime.now(UTC)).total_seconds() - 0.5))
    reporter = client.RunReporter(dispatch, RUNNER_SECRET)
    sent_at = datetime.now(UTC)
    try:
        outcome = reporter.complete()
    except client.ReportFailed as refused:
        outcome = f"HTTP {refused.status}: {refused.detail}"
    assert sent_at < dispatch.deadline
    final = _final(tenant, run["id"])
    assert outcome == "COMPLETED", (outcome, f"sent {(dispatch.deadline - sent_at).total_seconds():.2f}s "
                                             "before the deadline")
    assert final["status"] == "COMPLETED", final
    _ended_execution(aws_env, run["workflow_id"])
