"""The run state machine executed by moto, with the real dispatcher, callback and failure handler."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

from ksflow import aws
from ksflow.identity.models import CreatedTenant
from tests.conftest import Runner, call_api, definition_body, shorten_time_limit, wait_for


def _invoke(tenant: CreatedTenant, definition: dict[str, Any]) -> dict[str, Any]:
    created = call_api("POST", "/v1/workflow-definitions", definition, tenant.api_key)
    assert created.status == 201, created.body
    invoked = call_api("POST", f"/v1/workflow-definitions/{created.body['id']}/invoke", {}, tenant.api_key)
    assert invoked.status == 202, invoked.body
    assert invoked.body["status"] == "PENDING"
    return dict(invoked.body)


def _final(tenant: CreatedTenant, run_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        run = call_api("GET", f"/v1/workflow-runs/{run_id}", api_key=tenant.api_key).body
        return run if run["status"] in ("COMPLETED", "FAILED") else None

    return dict(wait_for(ended))


def _execution_history(env: dict[str, str], workflow_id: str) -> list[dict[str, Any]]:
    client = boto3.client("stepfunctions")
    arn = env["RUN_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + ":" + workflow_id
    wait_for(lambda: client.describe_execution(executionArn=arn)["status"] != "RUNNING")
    return list(client.get_execution_history(executionArn=arn)["events"])


def test_run_completes_when_runner_calls_back(aws_env: dict[str, str], api_server: str, tenant: CreatedTenant,
                                              knowledge: dict[str, str], runner_factory: Any) -> None:
    runner: Runner = runner_factory()
    run = _invoke(tenant, definition_body(knowledge, runner.url))
    final = _final(tenant, run["id"])
    assert final["status"] == "COMPLETED"
    assert final["error"] is None and final["completed_at"] is not None
    assert any("accepted run" in entry["log"] for entry in runner.received)
    events = _execution_history(aws_env, run["workflow_id"])
    assert events[-1]["type"] == "ExecutionSucceeded"


def test_runner_reported_failure_fails_the_run(aws_env: dict[str, str], api_server: str, tenant: CreatedTenant,
                                               knowledge: dict[str, str], runner_factory: Any) -> None:
    runner: Runner = runner_factory(fail=True)
    run = _invoke(tenant, definition_body(knowledge, runner.url))
    final = _final(tenant, run["id"])
    assert final["status"] == "FAILED"
    assert final["error"] == "Example runner was asked to fail"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_runner_fails_the_run_with_the_network_error(aws_env: dict[str, str], tenant: CreatedTenant,
                                                                 knowledge: dict[str, str],
                                                                 monkeypatch: Any) -> None:
    # Backoff would retry until the deadline; a short Lambda budget makes the dispatcher give up now.
    monkeypatch.setattr("ksflow.orchestration.dispatcher.SAFETY_MARGIN_SECONDS", 119.0)
    run = _invoke(tenant, definition_body(knowledge, f"http://127.0.0.1:{_closed_port()}/"))
    final = _final(tenant, run["id"])
    assert final["status"] == "FAILED"
    assert "Runner unreachable" in final["error"] and "NewConnectionError" in final["error"]
    events = _execution_history(aws_env, run["workflow_id"])
    assert any(e["type"] == "TaskFailed" and e["taskFailedEventDetails"]["error"] == "DispatchFailed"
               for e in events)


def test_silent_runner_fails_at_the_deadline(aws_env: dict[str, str], tenant: CreatedTenant,
                                             knowledge: dict[str, str], runner_factory: Any) -> None:
    runner: Runner = runner_factory(delay=3600)
    created = call_api("POST", "/v1/workflow-definitions", definition_body(knowledge, runner.url), tenant.api_key)
    shorten_time_limit(tenant, created.body["id"], 2)
    run = call_api("POST", f"/v1/workflow-definitions/{created.body['id']}/invoke", {}, tenant.api_key).body
    wait_for(lambda: call_api("GET", f"/v1/workflow-runs/{run['id']}", api_key=tenant.api_key).body["status"]
             == "RUNNING", timeout=5)
    final = _final(tenant, run["id"])
    assert final["status"] == "FAILED"
    assert "exceeded its time limit of 2 seconds" in final["error"]
    events = _execution_history(aws_env, run["workflow_id"])
    assert any(e["type"] == "TaskTimedOut" or "States.Timeout" in json.dumps(e, default=str) for e in events)


def test_completed_run_costs_few_transitions_and_invocations(aws_env: dict[str, str], api_server: str,
                                                             tenant: CreatedTenant, knowledge: dict[str, str],
                                                             runner_factory: Any) -> None:
    runner: Runner = runner_factory()
    run = _invoke(tenant, definition_body(knowledge, runner.url))
    assert _final(tenant, run["id"])["status"] == "COMPLETED"
    events = _execution_history(aws_env, run["workflow_id"])
    entered = [e for e in events if e["type"].endswith("StateEntered")]
    assert len(entered) == 1
    items = aws.table(os.environ["TABLE_NAME"]).query(KeyConditionExpression=Key("pk").eq(f"RUN#{run['id']}"))["Items"]
    assert items[0]["ended_by"] == "callback"
