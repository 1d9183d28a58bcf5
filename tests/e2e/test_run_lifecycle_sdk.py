"""A run's lifecycle through the local stack's HTTP port, with real runner processes: policy retries, a retry
by hand onto another runner, heartbeats with progress, and a stop the runner learns of from its heartbeat.

The `ksapi` 1.80.1 SDK knows nothing of stop, retry, heartbeats or events, nor of a definition's
`retry_policy` and `heartbeat_timeout_seconds`: those go over plain HTTP. Runs are read with the SDK too,
so these tests also prove that its models still parse every run response (later attempts, `attempts`,
progress) of this service.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ksapi
import pytest

from ksflow.runner import client as runner_client
from tests.e2e.conftest import LocalStack
from tests.e2e.test_local_stack_sdk import WEBHOOK_SECRET, _await_end, _client, _definition, _knowledge

pytestmark = pytest.mark.e2e

# The second runner's secret: a retry must sign its dispatch with the definition's secret at retry time.
OTHER_SECRET = "whsec_" + "c2Vjb25kLXJ1bm5lci1zZWNyZXQtdmFsdWU="
FAILURE = "Example runner was asked to fail"


def _http(stack: LocalStack, method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON body, headers) of a call made with the owner's API key."""
    headers = {"Authorization": f"Bearer {stack.credentials['api_key']}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(stack.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw, status, answer_headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, answer_headers = error.read(), error.code, dict(error.headers)
    return int(status), json.loads(raw) if raw else None, answer_headers


def _definition_body(parts: dict[str, Any], runner_url: str, secret: str, **extra: Any) -> dict[str, Any]:
    return {"name": "Summarise Policy Documents", "runner_type": "SELF_HOSTED",
            "runner_config": {"url": runner_url, "webhook_secret": secret},
            "source_path_part_ids": [str(parts["sources"].path_part_id)],
            "instruction_path_part_ids": [str(parts["instructions"].path_part_id)],
            "output_path_part_ids": [str(parts["outputs"].path_part_id)],
            "template_path_part_id": str(parts["template"].path_part_id), "max_run_duration_seconds": 60,
            **extra}


def _create_definition(stack: LocalStack, body: dict[str, Any]) -> dict[str, Any]:
    status, created, _ = _http(stack, "POST", "/v1/workflow-definitions", body)
    assert status == 201, created
    return dict(created)


def _get_run(stack: LocalStack, run_id: Any) -> dict[str, Any]:
    status, run, _ = _http(stack, "GET", f"/v1/workflow-runs/{run_id}")
    assert status == 200, run
    return dict(run)


def _events(stack: LocalStack, run_id: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        status, page, _ = _http(stack, "GET", f"/v1/workflow-runs/{run_id}/events?limit=100&offset={len(found)}")
        assert status == 200, page
        found += page["items"]
        if not page["items"] or len(found) >= page["total"]:
            assert len(found) == page["total"]
            return found


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def _runner_log(tmp_path: Path, runner_url: str) -> Callable[[], str]:
    """The runner's output so far: `start_runner` logs to `runner-<port>.log` in the test's tmp_path."""
    log = tmp_path / f"runner-{urlparse(runner_url).port}.log"
    return log.read_text


def _wait_for(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _sdk_run(client: ksapi.ApiClient, run_id: Any) -> ksapi.WorkflowRunResponse:
    run = ksapi.WorkflowRunsApi(client).get_workflow_run(run_id)
    assert isinstance(run, ksapi.WorkflowRunResponse) and str(run.id) == str(run_id)
    return run


def _exhaust_policy_retries(stack: LocalStack, start_runner: Callable[..., str],
                            tmp_path: Path) -> tuple[ksapi.ApiClient, dict[str, Any], dict[str, Any], str, str]:
    """A run of a definition allowing 2 attempts, on a runner that fails each: ended FAILED.

    Returns (SDK client, definition body, definition, run id, runner URL).
    """
    client = _client(stack, stack.credentials["api_key"])
    parts = _knowledge(client, stack.credentials["root_path_part_id"])
    runner = start_runner(WEBHOOK_SECRET, "--fail", "--delay", "0.2")
    body = _definition_body(parts, runner, WEBHOOK_SECRET,
                            retry_policy={"max_attempts": 2, "backoff_seconds": 1, "backoff_multiplier": 1})
    definition = _create_definition(stack, body)
    assert definition["retry_policy"] == {"max_attempts": 2, "backoff_seconds": 1, "backoff_multiplier": 1}
    # The SDK still reads a definition carrying a retry policy, and invokes it.
    read = ksapi.WorkflowDefinitionsApi(client).get_workflow_definition(definition["id"])
    assert str(read.id) == definition["id"] and read.runner_config.url == runner
    run = ksapi.WorkflowDefinitionsApi(client).invoke_workflow(definition["id"], ksapi.InvokeWorkflowRequest())
    assert run.status == "PENDING"
    final = _await_end(client, run.id)
    assert (final.status, final.error) == ("FAILED", FAILURE)
    return client, body, definition, str(run.id), runner


def test_policy_retry_runs_a_second_attempt_then_fails(local_stack: LocalStack, start_runner: Callable[..., str],
                                                       tmp_path: Path) -> None:
    client, _, _, run_id, runner = _exhaust_policy_retries(local_stack, start_runner, tmp_path)

    run = _get_run(local_stack, run_id)
    assert (run["status"], run["attempt"], run["error"]) == ("FAILED", 2, FAILURE)
    assert [(a["attempt"], a["status"], a["error"]) for a in run["attempts"]] == [(1, "FAILED", FAILURE)]
    first = run["attempts"][0]
    assert first["completed_at"] is not None and _when(first["started_at"]) <= _when(first["completed_at"])
    # The second attempt started after the 1 s backoff, with its own times.
    assert (_when(run["started_at"]) - _when(first["completed_at"])).total_seconds() >= 0.9
    assert _when(run["completed_at"]) >= _when(run["started_at"])
    assert run["progress"] is None and run["last_heartbeat_at"] is None

    events = _events(local_stack, run_id)
    assert _types(events) == ["created", "dispatch_attempt", "dispatched", "callback", "failed", "retry_scheduled",
                              "dispatch_attempt", "dispatched", "callback", "failed"], events
    assert [event["attempt"] for event in events] == [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert all(_when(a["at"]) <= _when(b["at"]) for a, b in itertools.pairwise(events))
    callbacks = [event["detail"] for event in events if event["type"] == "callback"]
    assert all(detail["status"] == "FAILED" and detail["error"] == FAILURE for detail in callbacks), callbacks
    assert all(detail["authenticated_by"] == "signature" for detail in callbacks)
    retrying, final = (event["detail"] for event in events if event["type"] == "failed")
    assert retrying["reason"] == "callback" and retrying["retrying"] is True
    assert final["reason"] == "callback" and not final.get("retrying")
    scheduled = events[5]["detail"]
    assert _when(scheduled["starts_at"]) == _when(run["started_at"])

    log = _runner_log(tmp_path, runner)()
    assert log.count(f"accepted run {run_id}") == 2, log
    assert log.count(f"reported FAILED for run {run_id}: HTTP 200") == 2, log

    # The SDK's model parses a run at its second attempt.
    parsed = _sdk_run(client, run_id)
    assert (parsed.status, parsed.error) == ("FAILED", FAILURE) and parsed.completed_at is not None

    # Numbers in event details are JSON numbers, as the contract's "HTTP status, duration_ms" says.
    dispatches = [event["detail"] for event in events if event["type"] == "dispatch_attempt"]
    assert [detail["status"] for detail in dispatches] == [202, 202], dispatches
    assert all(isinstance(detail["duration_ms"], int) for detail in dispatches), dispatches
    assert scheduled["wait_seconds"] == 1, scheduled


def test_retry_by_hand_uses_the_definitions_current_runner(local_stack: LocalStack,
                                                           start_runner: Callable[..., str], tmp_path: Path) -> None:
    client, body, definition, run_id, first_runner = _exhaust_policy_retries(local_stack, start_runner, tmp_path)

    # The definition now points at another runner, holding another secret.
    second_runner = start_runner(OTHER_SECRET)
    status, replaced, _ = _http(local_stack, "PUT", f"/v1/workflow-definitions/{definition['id']}",
                                {**body, "runner_config": {"url": second_runner, "webhook_secret": OTHER_SECRET}})
    assert status == 200 and replaced["runner_config"]["url"] == second_runner, replaced

    status, retried, headers = _http(local_stack, "POST", f"/v1/workflow-runs/{run_id}/retry")
    assert status == 202, retried
    assert headers.get("Location") == f"/v1/workflow-runs/{run_id}"
    assert (retried["id"], retried["status"], retried["attempt"]) == (run_id, "PENDING", 3)
    assert retried["error"] is None and retried["completed_at"] is None
    assert [(a["attempt"], a["status"]) for a in retried["attempts"]] == [(1, "FAILED"), (2, "FAILED")]
    parsed = ksapi.WorkflowRunResponse.from_dict(retried)
    assert parsed is not None and (parsed.status, parsed.error) == ("PENDING", None)
    # A second retry of a run that is no longer FAILED is refused.
    assert _http(local_stack, "POST", f"/v1/workflow-runs/{run_id}/retry")[0] == 409

    final = _await_end(client, run_id)
    assert (final.status, final.error) == ("COMPLETED", None) and final.completed_at is not None
    run = _get_run(local_stack, run_id)
    assert (run["status"], run["attempt"]) == ("COMPLETED", 3)
    assert [(a["attempt"], a["status"], a["error"]) for a in run["attempts"]] == [(1, "FAILED", FAILURE),
                                                                                 (2, "FAILED", FAILURE)]
    assert _when(run["started_at"]) >= _when(run["attempts"][1]["completed_at"])

    second_log = _runner_log(tmp_path, second_runner)()
    assert second_log.count(f"accepted run {run_id}") == 1, second_log
    assert f"reported COMPLETED for run {run_id}: HTTP 200" in second_log and "rejected" not in second_log
    assert _runner_log(tmp_path, first_runner)().count(f"accepted run {run_id}") == 2

    events = _events(local_stack, run_id)
    tail = events[10:]
    assert _types(tail) == ["retried", "dispatch_attempt", "dispatched", "callback", "completed"], events
    assert {event["attempt"] for event in tail} == {3}
    assert tail[0]["detail"].get("by") == local_stack.credentials["user_id"], tail[0]

    # The SDK parses the run at its third attempt, read alone and in the definition's run listing.
    assert _sdk_run(client, run_id).status == "COMPLETED"
    listed = ksapi.WorkflowDefinitionsApi(client).list_workflow_runs(definition["id"])
    assert [(str(item.id), item.status) for item in listed.items] == [(run_id, "COMPLETED")]


def test_heartbeats_report_progress_while_the_runner_works(local_stack: LocalStack,
                                                           start_runner: Callable[..., str], tmp_path: Path) -> None:
    client = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    runner = start_runner(WEBHOOK_SECRET, "--heartbeat-every", "1", "--delay", "4")
    definition = _create_definition(local_stack, _definition_body(parts, runner, WEBHOOK_SECRET,
                                                                  heartbeat_timeout_seconds=10))
    assert definition["heartbeat_timeout_seconds"] == 10
    run_id = str(ksapi.WorkflowDefinitionsApi(client).invoke_workflow(definition["id"],
                                                                      ksapi.InvokeWorkflowRequest()).id)

    first = _wait_for(lambda: (run := _get_run(local_stack, run_id))["progress"] is not None and run,
                      "the first progress")
    assert first["status"] == "RUNNING" and first["last_heartbeat_at"] is not None
    assert first["progress_message"] in ("started", "waiting 4s before reporting COMPLETED")
    assert _sdk_run(client, run_id).status == "RUNNING"  # the SDK reads a run with progress set
    seen = [first]
    while (run := _get_run(local_stack, run_id))["status"] == "RUNNING":
        seen.append(run)
        time.sleep(0.3)
    running = [run for run in seen if run["status"] == "RUNNING"]
    progress = [run["progress"] for run in running]
    assert progress == sorted(progress) and len(set(progress)) >= 2, progress
    assert max(progress) > first["progress"]
    assert "waiting 4s before reporting COMPLETED" in {run["progress_message"] for run in running}
    beats = sorted({_when(run["last_heartbeat_at"]) for run in running})
    assert len(beats) >= 2, beats
    # A heartbeat does not change updated_at.
    assert {run["updated_at"] for run in running} == {first["updated_at"]}

    final = _await_end(client, run_id)
    assert (final.status, final.error) == ("COMPLETED", None)
    log = _runner_log(tmp_path, runner)()
    assert f"reported COMPLETED for run {run_id}: HTTP 200" in log and "stopped run" not in log

    events = _events(local_stack, run_id)
    types = _types(events)
    heartbeats = [event for event in events if event["type"] == "heartbeat"]
    assert len(heartbeats) >= 2, events
    assert types[:3] == ["created", "dispatch_attempt", "dispatched"] and types[-2:] == ["callback", "completed"]
    assert types.index("heartbeat") > types.index("dispatched")
    assert all(event["attempt"] == 1 for event in heartbeats)
    # Only progress changes are recorded.
    recorded = [float(event["detail"]["progress"]) for event in heartbeats]
    assert recorded == sorted(recorded) and len(set(recorded)) == len(recorded), heartbeats

    # A COMPLETED run cannot be retried or stopped.
    assert _http(local_stack, "POST", f"/v1/workflow-runs/{run_id}/retry")[0] == 409
    assert _http(local_stack, "POST", f"/v1/workflow-runs/{run_id}/stop")[0] == 409

    # A heartbeat event's progress is a JSON number, as the run's own `progress` is.
    assert all(isinstance(event["detail"]["progress"], int) for event in heartbeats), [
        event["detail"] for event in heartbeats]


def test_stopped_run_stops_its_runner_at_the_next_heartbeat(local_stack: LocalStack,
                                                            start_runner: Callable[..., str], tmp_path: Path) -> None:
    client = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    runner = start_runner(WEBHOOK_SECRET, "--delay", "30", "--heartbeat-every", "1")
    definition = _definition(client, parts, runner)
    run_id = str(ksapi.WorkflowDefinitionsApi(client).invoke_workflow(definition.id,
                                                                      ksapi.InvokeWorkflowRequest()).id)
    _wait_for(lambda: _get_run(local_stack, run_id)["progress"] is not None, "the runner's first heartbeat")

    status, stopped, _ = _http(local_stack, "POST", f"/v1/workflow-runs/{run_id}/stop")
    assert status == 200, stopped
    assert (stopped["id"], stopped["status"], stopped["error"]) == (run_id, "FAILED", "Stopped by user")
    assert stopped["completed_at"] is not None
    parsed = ksapi.WorkflowRunResponse.from_dict(stopped)
    assert parsed is not None and (parsed.status, parsed.error) == ("FAILED", "Stopped by user")
    assert _http(local_stack, "POST", f"/v1/workflow-runs/{run_id}/stop")[0] == 409

    log = _runner_log(tmp_path, runner)
    line = _wait_for(lambda: next((line for line in log().splitlines()
                                   if line.startswith(f"stopped run {run_id} without calling back")), None),
                     "the runner to stop", timeout=15)
    assert "HTTP 409" in line, line
    assert f"reported COMPLETED for run {run_id}" not in log() and f"reported FAILED for run {run_id}" not in log()

    final = _sdk_run(client, run_id)
    assert (final.status, final.error) == ("FAILED", "Stopped by user")
    events = _events(local_stack, run_id)
    assert _types(events)[-1] == "failed" and events[-1]["detail"]["reason"] == "stopped", events
    assert "callback" not in _types(events) and "retry_scheduled" not in _types(events)


def test_a_quiet_runner_fails_its_attempt_and_its_late_callback_is_stale(local_stack: LocalStack,
                                                                        start_runner: Callable[..., str]) -> None:
    """A runner that never heartbeats fails at the heartbeat timeout, long before the deadline; after a retry
    by hand, its callback for attempt 1 (signed, as the runner helper sends it) is 409 and changes nothing."""
    client = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    quiet = start_runner(WEBHOOK_SECRET, "--delay", "120")
    definition = _create_definition(local_stack, _definition_body(parts, quiet, WEBHOOK_SECRET,
                                                                  max_run_duration_seconds=600,
                                                                  heartbeat_timeout_seconds=10))
    run = ksapi.WorkflowDefinitionsApi(client).invoke_workflow(definition["id"], ksapi.InvokeWorkflowRequest())
    failed = _wait_for(lambda: (r := _get_run(local_stack, run.id))["status"] == "FAILED" and r,
                       "the heartbeat timeout", timeout=40)
    assert failed["error"].startswith("The runner stopped sending heartbeats")
    assert (_when(failed["completed_at"]) - _when(failed["started_at"])).total_seconds() < 60
    assert _events(local_stack, run.id)[-1]["detail"]["reason"] == "heartbeat_timeout"
    assert _sdk_run(client, run.id).status == "FAILED"

    status, retried, _ = _http(local_stack, "POST", f"/v1/workflow-runs/{run.id}/retry")
    assert (status, retried["attempt"]) == (202, 2), retried
    with pytest.raises(runner_client.RunEnded, match="Attempt 1 of this workflow run is no longer current"):
        runner_client.post_signed(f"{local_stack.url}/v1/workflow-runs/{run.id}/callback?attempt=1",
                                  WEBHOOK_SECRET, {"status": "COMPLETED"}, attempts=1)
    after = _get_run(local_stack, run.id)
    assert (after["status"], after["attempt"]) == ("PENDING", 2) or after["status"] == "RUNNING"
    assert [(a["attempt"], a["status"]) for a in after["attempts"]] == [(1, "FAILED")]
    assert "callback" not in _types(_events(local_stack, run.id))
    assert _http(local_stack, "POST", f"/v1/workflow-runs/{run.id}/stop")[0] == 200  # the quiet runner never ends it
