"""The run state machine executed by moto, with the real dispatcher, callback and failure handler."""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from moto.awslambda.models import LambdaFunction
from moto.core.exceptions import JsonRESTError

from ksflow import aws
from ksflow.identity.models import CreatedTenant
from ksflow.orchestration import expiry
from ksflow.runner import example
from ksflow.workflows import webhooks
from tests.conftest import RUNNER_SECRET, Runner, call_api, definition_body, shorten_time_limit, wait_for
from tests.unit.test_delivery import ScriptedRunner


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


def _execution_arn(env: dict[str, str], workflow_id: str) -> str:
    return env["RUN_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + ":" + workflow_id


def _execution_history(env: dict[str, str], workflow_id: str) -> list[dict[str, Any]]:
    client = boto3.client("stepfunctions")
    arn = _execution_arn(env, workflow_id)
    wait_for(lambda: client.describe_execution(executionArn=arn)["status"] != "RUNNING")
    return list(client.get_execution_history(executionArn=arn)["events"])


def _wait_for_retry_waits(env: dict[str, str], workflow_id: str, count: int = 1) -> None:
    """Until the execution has entered the wait before a new dispatch `count` times."""
    client, arn = boto3.client("stepfunctions"), _execution_arn(env, workflow_id)
    wait_for(lambda: _states_entered(client.get_execution_history(executionArn=arn)["events"])
             .count("WaitBeforeRedispatch") >= count, timeout=10)


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


def _states_entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def _lambda_errors(events: list[dict[str, Any]]) -> list[str]:
    """Errors that failed a task other than the runner being unavailable: Lambda function errors (which
    page the operator) and Lambda service errors."""
    return [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"
            and e["taskFailedEventDetails"]["error"] != "RunnerUnavailable"]


@pytest.fixture
def quick_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A last attempt may start 1 s before the deadline (not 5), so short time limits leave room for retries."""
    monkeypatch.setattr("ksflow.orchestration.dispatcher.ATTEMPT_SECONDS", 1.0)


def test_unreachable_runner_is_retried_until_no_time_is_left_then_fails_the_run(
        aws_env: dict[str, str], tenant: CreatedTenant, knowledge: dict[str, str], quick_attempts: None) -> None:
    created = call_api("POST", "/v1/workflow-definitions",
                       definition_body(knowledge, f"http://127.0.0.1:{_closed_port()}/"), tenant.api_key)
    shorten_time_limit(tenant, created.body["id"], 4)
    run = call_api("POST", f"/v1/workflow-definitions/{created.body['id']}/invoke", {}, tenant.api_key).body
    final = _final(tenant, run["id"])
    assert final["status"] == "FAILED"
    assert "Runner unreachable" in final["error"] and "NewConnectionError" in final["error"]
    assert "no time left before the deadline" in final["error"]
    events = _execution_history(aws_env, run["workflow_id"])
    assert _states_entered(events).count("DispatchAndAwaitCallback") >= 2
    assert _lambda_errors(events) == []
    assert events[-1]["type"] == "ExecutionSucceeded"


def test_runner_refusing_the_dispatch_fails_the_run_at_once_without_a_lambda_error(
        aws_env: dict[str, str], tenant: CreatedTenant, knowledge: dict[str, str], runner_factory: Any) -> None:
    runner: Runner = runner_factory(secret="whsec_" + "b3RoZXItc2VjcmV0LWtleS1mb3ItdGVzdHM=")
    run = _invoke(tenant, definition_body(knowledge, runner.url))
    final = _final(tenant, run["id"])
    assert final["status"] == "FAILED" and final["error"] == "Runner answered HTTP 401"
    assert len([entry for entry in runner.received if "rejected dispatch" in entry["log"]]) == 1
    events = _execution_history(aws_env, run["workflow_id"])
    assert _states_entered(events) == ["DispatchAndAwaitCallback"]
    assert _lambda_errors(events) == []


@pytest.fixture
def late_runner() -> Iterator[Callable[..., None]]:
    """Starts the example runner on a given port, later than the run that needs it."""
    servers: list[Any] = []

    def start(port: int, delay: float = 0.2) -> None:
        server = example.make_server("127.0.0.1", port, RUNNER_SECRET, delay=delay, fail=False, log=lambda _: None)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_runner_down_longer_than_a_dispatcher_invocation_still_gets_the_run(
        aws_env: dict[str, str], api_server: str, tenant: CreatedTenant, knowledge: dict[str, str],
        late_runner: Callable[..., None]) -> None:
    # The outage outlasts one dispatcher invocation: only Step Functions can wait it out.
    boto3.client("lambda").update_function_configuration(FunctionName="ksflow-Dispatcher", Timeout=2)
    port = _closed_port()
    run = _invoke(tenant, definition_body(knowledge, f"http://127.0.0.1:{port}/"))
    _wait_for_retry_waits(aws_env, run["workflow_id"], count=2)
    late_runner(port)
    final = _final(tenant, run["id"])
    assert final["status"] == "COMPLETED"
    events = _execution_history(aws_env, run["workflow_id"])
    entered = _states_entered(events)
    retries = entered.count("PlanRedispatch")
    assert retries >= 2
    assert entered == ["DispatchAndAwaitCallback"] + ["PlanRedispatch", "WaitBeforeRedispatch",
                                                      "DispatchAndAwaitCallback"] * retries
    assert _lambda_errors(events) == []


def test_each_redispatch_recomputes_the_time_left_until_the_deadline(
        aws_env: dict[str, str], tenant: CreatedTenant, knowledge: dict[str, str],
        late_runner: Callable[..., None], quick_attempts: None) -> None:
    port = _closed_port()
    created = call_api("POST", "/v1/workflow-definitions",
                       definition_body(knowledge, f"http://127.0.0.1:{port}/"), tenant.api_key)
    shorten_time_limit(tenant, created.body["id"], 6)
    run = call_api("POST", f"/v1/workflow-definitions/{created.body['id']}/invoke", {}, tenant.api_key).body
    _wait_for_retry_waits(aws_env, run["workflow_id"])
    late_runner(port, delay=3600)  # accepts, never calls back
    final = _final(tenant, run["id"])
    assert final["status"] == "FAILED" and "exceeded its time limit of 6 seconds" in final["error"]
    events = _execution_history(aws_env, run["workflow_id"])
    inputs = [(e["stateEnteredEventDetails"]["name"], json.loads(e["stateEnteredEventDetails"]["input"]))
              for e in events if e["type"].endswith("StateEntered")]
    dispatches = [state for name, state in inputs if name == "DispatchAndAwaitCallback"]
    waits = [state["wait_seconds"] for name, state in inputs if name == "WaitBeforeRedispatch"]
    # The heartbeat timer (no heartbeat timeout set) is the time left; the task's timeout a second more.
    assert [state["heartbeat_seconds"] for state in dispatches] == [6, dispatches[1]["heartbeat_seconds"]]
    assert all(state["timeout_seconds"] == state["heartbeat_seconds"] + 1 for state in dispatches)
    assert dispatches[1]["heartbeat_seconds"] <= 6 - waits[0]


def _end_run(how: str, run: dict[str, Any], tenant: CreatedTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "cancel":
        assert call_api("DELETE", f"/v1/workflows/{run['workflow_id']}", api_key=tenant.api_key).status == 200
    elif how == "callback":
        body = json.dumps({"status": "COMPLETED"})
        headers = webhooks.sign_headers(RUNNER_SECRET, f"msg_{uuid.uuid4().hex}", datetime.now(UTC), body)
        assert call_api("POST", f"/v1/workflow-runs/{run['id']}/callback", headers=headers,
                        raw_body=body).status == 200
    else:
        after_the_deadline = datetime.now(UTC) + timedelta(hours=1)
        monkeypatch.setattr("ksflow.orchestration.expiry.clock", SimpleNamespace(now=lambda: after_the_deadline))
        assert expiry.expire(run["id"])


@pytest.mark.parametrize("how", ["cancel", "callback", "expiry"])
def test_a_run_ended_during_the_retry_wait_gets_no_further_dispatch(
        aws_env: dict[str, str], tenant: CreatedTenant, knowledge: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        how: str) -> None:
    monkeypatch.setattr("ksflow.orchestration.dispatcher.MIN_BACKOFF_SECONDS", 3)
    runner = ScriptedRunner([503])
    try:
        run = _invoke(tenant, definition_body(knowledge, runner.url))
        _wait_for_retry_waits(aws_env, run["workflow_id"])
        _end_run(how, run, tenant, monkeypatch)
        _execution_history(aws_env, run["workflow_id"])  # waits for the execution to end
        assert runner.attempts == 1
        assert _final(tenant, run["id"])["status"] == ("COMPLETED" if how == "callback" else "FAILED")
    finally:
        runner.close()


@pytest.fixture
def lambda_glitch(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], list[str]]:
    """The Lambda service fails the next invocation of a function with an error code; returns the codes raised."""
    def glitch(function_name: str, error_code: str) -> list[str]:
        raised: list[str] = []
        invoke = LambdaFunction._invoke_lambda

        def failing_once(self: LambdaFunction, event: Any = None) -> Any:
            if self.function_name == function_name and not raised:
                raised.append(error_code)
                raise JsonRESTError(error_code, "Simulated Lambda service error")
            return invoke(self, event)

        monkeypatch.setattr(LambdaFunction, "_invoke_lambda", failing_once)
        return raised

    return glitch


@pytest.mark.parametrize("error_code", ["ServiceException", "AWSLambdaException", "SdkClientException",
                                        "TooManyRequestsException"])
def test_a_lambda_service_error_during_dispatch_is_retried(
        aws_env: dict[str, str], api_server: str, tenant: CreatedTenant, knowledge: dict[str, str],
        runner_factory: Any, lambda_glitch: Callable[[str, str], list[str]], error_code: str) -> None:
    raised = lambda_glitch("ksflow-Dispatcher", error_code)
    run = _invoke(tenant, definition_body(knowledge, runner_factory().url))
    assert _final(tenant, run["id"])["status"] == "COMPLETED"
    events = _execution_history(aws_env, run["workflow_id"])
    assert raised == [error_code] and _lambda_errors(events) == [f"Lambda.{error_code}"]


def test_a_lambda_service_error_while_failing_the_run_is_retried(
        aws_env: dict[str, str], tenant: CreatedTenant, knowledge: dict[str, str], runner_factory: Any,
        lambda_glitch: Callable[[str, str], list[str]]) -> None:
    raised = lambda_glitch("ksflow-RunFailure", "AWSLambdaException")
    created = call_api("POST", "/v1/workflow-definitions", definition_body(knowledge, runner_factory(delay=3600).url),
                       tenant.api_key)
    shorten_time_limit(tenant, created.body["id"], 1)
    run = call_api("POST", f"/v1/workflow-definitions/{created.body['id']}/invoke", {}, tenant.api_key).body
    final = _final(tenant, run["id"])
    assert final["status"] == "FAILED" and "exceeded its time limit of 1 seconds" in final["error"]
    assert raised == ["AWSLambdaException"]


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
    assert _states_entered(events) == ["DispatchAndAwaitCallback"]
    items = aws.table(os.environ["TABLE_NAME"]).query(KeyConditionExpression=Key("pk").eq(f"RUN#{run['id']}"))["Items"]
    run_item = next(item for item in items if item["sk"] == "RUN")
    assert run_item["ended_by"] == "callback"
    # The run's history sits beside it: created, the dispatch attempt, dispatched, the callback, completed.
    assert sorted(item["type"] for item in items if item["sk"].startswith("EVENT#")) == [
        "callback", "completed", "created", "dispatch_attempt", "dispatched"]
