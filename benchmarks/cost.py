"""`make bench`: what each operation costs, counted rather than timed.

Runs the real API handler, state machine and task Lambdas on moto. AWS calls are counted
with botocore `before-call`/`after-call` hooks on the thread that serves the request, so
Step Functions' own work (invoking the dispatcher) is not charged to the API call; it is
counted separately from the execution history.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR",
})
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3
from moto import mock_aws

from benchmarks import publish
from ksflow import aws, clock
from ksflow.api.handler import lambda_handler
from ksflow.identity import store as identity
from ksflow.local import gateway, lambda_runtime, provision
from ksflow.local.lambda_runtime import LocalContext
from ksflow.runner import example
from ksflow.workflows import run_store, webhooks
from ksflow.workflows.models import RunStatus, WorkflowRun

RESULTS = Path(".bench/results.json")
SECRET = "bench-webhook-secret"


class CallCounter:
    """AWS API calls and DynamoDB items read, made by one thread while `measuring`."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items_read = 0
        self._thread: int | None = None

    def before_call(self, model: Any, **_: Any) -> None:
        if threading.get_ident() == self._thread:
            self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def after_call(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if threading.get_ident() != self._thread:
            return
        if model.name in ("Query", "Scan"):
            self.items_read += int(parsed.get("ScannedCount", parsed.get("Count", 0)))
        elif model.name == "GetItem" and parsed.get("Item"):
            self.items_read += 1
        elif model.name == "BatchGetItem":
            self.items_read += sum(len(items) for items in parsed.get("Responses", {}).values())

    @contextmanager
    def measuring(self) -> Iterator[CallCounter]:
        self.calls.clear()
        self.items_read = 0
        self._thread = threading.get_ident()
        try:
            yield self
        finally:
            self._thread = None


def request(method: str, path: str, api_key: str, body: Any = None, headers: dict[str, str] | None = None,
            raw: str | None = None) -> tuple[int, Any]:
    payload = raw if raw is not None else (json.dumps(body) if body is not None else "")
    all_headers = {"content-type": "application/json", "authorization": f"Bearer {api_key}", **(headers or {})}
    if headers is not None and "authorization" not in {k.lower() for k in headers}:
        all_headers.pop("authorization")
    event = gateway.to_event(method, path, all_headers, payload.encode(), "127.0.0.1")
    result = lambda_handler(event, LocalContext(function_name="ksflow-Api", timeout_seconds=30))
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else None


def wait_for(predicate: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("benchmark step did not finish")


def signed_post(path: str, payload: dict[str, Any]) -> tuple[int, Any]:
    """A runner's message (callback or heartbeat), signed with a fresh message id."""
    body = json.dumps(payload)
    headers = webhooks.sign_headers(SECRET, f"msg_{uuid.uuid4().hex}", datetime.now(UTC), body)
    return request("POST", path, "", headers={"content-type": "application/json", **headers}, raw=body)


def signed_callback(run_id: str, status: str) -> tuple[int, Any]:
    return signed_post(f"/v1/workflow-runs/{run_id}/callback", {"status": status})


def seed_runs(definition_id: str, template: WorkflowRun, count: int) -> None:
    """Run records as invoke writes them (same item builder), without starting executions."""
    table = aws.table(os.environ["TABLE_NAME"])
    start = clock.now() - timedelta(days=1)
    with table.batch_writer() as batch:
        for index in range(count):
            moment = start + timedelta(milliseconds=index)
            run = template.model_copy(update={"id": str(uuid.uuid4()), "workflow_definition_id": definition_id,
                                              "created_at": moment, "started_at": moment,
                                              "status": RunStatus.COMPLETED, "idempotency_key": None})
            batch.put_item(Item=run_store._run_item(run))
    table.update_item(Key={"pk": f"TENANT#{template.tenant_id}", "sk": f"WORKFLOWDEF#{definition_id}"},
                      UpdateExpression="ADD run_count :n", ExpressionAttributeValues={":n": count})


def main() -> dict[str, Any]:
    lambda_runtime.install()
    counter = CallCounter()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call", counter.before_call)
        session.events.register("after-call", counter.after_call)
        server = gateway.make_server("127.0.0.1", 0, lambda_handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = provision.provision(allow_loopback_runners=True,
                                  public_api_url=f"http://127.0.0.1:{server.server_address[1]}")
        os.environ.update(env)
        tenant = identity.create_tenant("Bench", "bench@example.com")
        key, root = tenant.api_key, tenant.root_path_part_id
        silent = example.make_server("127.0.0.1", 0, SECRET, delay=3600, fail=False, log=lambda _: None)
        threading.Thread(target=silent.serve_forever, daemon=True).start()
        runner_url = f"http://127.0.0.1:{silent.server_address[1]}/"

        def part(kind: str, name: str) -> str:
            body: dict[str, Any] = {"name": name, "parent_path_part_id": root}
            if kind == "documents":
                body |= {"document_type": "PLAINTEXT", "document_origin": "SOURCE"}
            return str(request("POST", f"/v1/{kind}", key, body)[1]["path_part_id"])

        definition = {
            "name": "bench", "runner_type": "SELF_HOSTED",
            "runner_config": {"url": runner_url, "webhook_secret": SECRET},
            "source_path_part_ids": [part("folders", "src")],
            "instruction_path_part_ids": [part("documents", "i.md")],
            "output_path_part_ids": [part("folders", "out")], "template_path_part_id": part("documents", "t.md"),
        }
        operations: dict[str, dict[str, Any]] = {}

        def measure(name: str, action: Callable[[], tuple[int, Any]]) -> Any:
            action()  # warm: caches filled, as in a warm Lambda container
            with counter.measuring():
                status, body = action()
            operations[name] = {"aws_calls": sum(counter.calls.values()), "calls": dict(counter.calls),
                                "items_read": counter.items_read, "status": status}
            return body

        created = measure("create_definition", lambda: request("POST", "/v1/workflow-definitions", key, definition))
        definition_id = created["id"]
        run = measure("invoke", lambda: request("POST", f"/v1/workflow-definitions/{definition_id}/invoke", key, {}))
        measure("get_run", lambda: request("GET", f"/v1/workflow-runs/{run['id']}", key))
        measure("list_runs", lambda: request("GET", f"/v1/workflow-definitions/{definition_id}/runs", key))

        def running_run() -> str:
            started = request("POST", f"/v1/workflow-definitions/{definition_id}/invoke", key, {})[1]
            wait_for(lambda: request("GET", f"/v1/workflow-runs/{started['id']}", key)[1]["status"] == "RUNNING")
            return str(started["id"])

        callback_runs = [running_run(), running_run()]
        measure("callback", lambda: signed_callback(callback_runs.pop(), "COMPLETED"))
        beating = running_run()
        progress = iter(range(1, 100))
        measure("heartbeat", lambda: signed_post(f"/v1/workflow-runs/{beating}/heartbeat",
                                                 {"progress": next(progress), "message": "working"}))
        measure("run_events", lambda: request("GET", f"/v1/workflow-runs/{beating}/events", key))
        stopping = [running_run(), running_run()]
        measure("stop", lambda: request("POST", f"/v1/workflow-runs/{stopping.pop()}/stop", key))

        # Per completed run: transitions and task Lambdas from its execution history, plus the two API calls.
        sfn = boto3.client("stepfunctions")

        def history(run_id: str) -> list[dict[str, Any]]:
            arn = env["RUN_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + f":run-{run_id}"
            return list(sfn.get_execution_history(executionArn=arn)["events"])

        def dispatch_retries(events: list[dict[str, Any]]) -> int:
            return sum(1 for e in events if e["type"] == "TaskStateEntered"
                       and e["stateEnteredEventDetails"]["name"] == "PlanRedispatch")

        def completed_run_cost(run_id: str, api_invocations: int = 2) -> dict[str, int]:
            wait_for(lambda: request("GET", f"/v1/workflow-runs/{run_id}", key)[1]["status"] == "RUNNING")
            signed_callback(run_id, "COMPLETED")
            wait_for(lambda: history(run_id)[-1]["type"] == "ExecutionSucceeded")
            events = history(run_id)
            return {
                "state_transitions": sum(1 for e in events if e["type"].endswith("StateEntered")),
                "lambda_invocations": api_invocations + sum(1 for e in events if e["type"] == "TaskScheduled"
                                              and "lambda" in e["taskScheduledEventDetails"]["resourceType"]),
                "dispatch_retries": dispatch_retries(events),
            }

        per_run = completed_run_cost(run["id"])
        per_run.pop("dispatch_retries")

        # One policy retry: attempt 1 reports FAILED, attempt 2 completes.
        retrying = request("POST", "/v1/workflow-definitions", key, {
            **definition, "retry_policy": {"max_attempts": 2, "backoff_seconds": 1, "backoff_multiplier": 1}})[1]
        failing = request("POST", f"/v1/workflow-definitions/{retrying['id']}/invoke", key, {})[1]
        wait_for(lambda: request("GET", f"/v1/workflow-runs/{failing['id']}", key)[1]["status"] == "RUNNING")
        with counter.measuring():
            status, _ = signed_callback(failing["id"], "FAILED")
        operations["callback_failed_then_retried"] = {"aws_calls": sum(counter.calls.values()),
                                                      "calls": dict(counter.calls), "items_read": counter.items_read,
                                                      "status": status}
        wait_for(lambda: request("GET", f"/v1/workflow-runs/{failing['id']}", key)[1]["attempt"] == 2)
        with_policy_retry = completed_run_cost(failing["id"], api_invocations=3)
        with_policy_retry.pop("dispatch_retries")
        per_policy_retry = {name: with_policy_retry[name] - per_run[name] for name in with_policy_retry}

        # One retry by hand of a stopped run: a new execution for the new attempt.
        stopped = running_run()
        request("POST", f"/v1/workflow-runs/{stopped}/stop", key)
        with counter.measuring():
            status, _ = request("POST", f"/v1/workflow-runs/{stopped}/retry", key)
        operations["retry_by_hand"] = {"aws_calls": sum(counter.calls.values()), "calls": dict(counter.calls),
                                       "items_read": counter.items_read, "status": status}

        # One dispatch retry: the runner is down for the first attempt and back for the next one.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            down_port = probe.getsockname()[1]
        flaky = request("POST", "/v1/workflow-definitions", key, {
            **definition, "runner_config": {"url": f"http://127.0.0.1:{down_port}/", "webhook_secret": SECRET}})[1]
        retried = request("POST", f"/v1/workflow-definitions/{flaky['id']}/invoke", key, {})[1]
        wait_for(lambda: dispatch_retries(history(retried["id"])))
        revived = example.make_server("127.0.0.1", down_port, SECRET, delay=3600, fail=False, log=lambda _: None)
        threading.Thread(target=revived.serve_forever, daemon=True).start()
        with_retries = completed_run_cost(retried["id"])
        retries = with_retries.pop("dispatch_retries")
        assert retries >= 1, "the first dispatch did not fail"
        per_retry = {name: (with_retries[name] - per_run[name]) / retries for name in with_retries}
        revived.shutdown()

        template = run_store.get(run["id"])
        assert template is not None
        scaling: dict[str, Any] = {}
        for label, total in (("runs_10", 10), ("runs_10000", 10_000)):
            scaled = request("POST", "/v1/workflow-definitions", key, definition)[1]["id"]
            seed_runs(scaled, template, total)
            # Both pages hold 10 runs, so the ratio shows only what a longer history costs.
            first_page = f"/v1/workflow-definitions/{scaled}/runs?limit=10"
            page = measure(f"list_runs_{label}", lambda path=first_page: request("GET", path, key))  # type: ignore[misc]
            assert (page["total"], len(page["items"])) == (total, 10), (page["total"], len(page["items"]))
            scaling[label] = operations.pop(f"list_runs_{label}")
        scaling["ratio"] = round(scaling["runs_10000"]["items_read"] / scaling["runs_10"]["items_read"], 3)

        for run_id in [r["id"] for r in request("GET", f"/v1/workflow-definitions/{definition_id}/runs", key,
                                                 )[1]["items"] if r["status"] in ("PENDING", "RUNNING")]:
            wait_for(lambda run_id=run_id: signed_callback(run_id, "COMPLETED")[0] == 200)  # type: ignore[misc]
        wait_for(lambda: not sfn.list_executions(stateMachineArn=env["RUN_STATE_MACHINE_ARN"],
                                                 statusFilter="RUNNING")["executions"])
        silent.shutdown()
        server.shutdown()
    return {"operations": operations, "per_completed_run": per_run, "per_dispatch_retry": per_retry,
            "per_policy_retry": per_policy_retry, "list_runs_scaling": scaling}


TARGETS = {"get_run": 1, "list_runs": 2, "invoke": 5, "callback": 4, "heartbeat": 4}


def report(results: dict[str, Any]) -> str:
    lines = [f"{'operation':<20}{'aws calls':>10}{'target':>8}  calls"]
    for name, numbers in results["operations"].items():
        target = TARGETS.get(name, "")
        lines.append(f"{name:<20}{numbers['aws_calls']:>10}{target!s:>8}  "
                     + ", ".join(f"{k} x{v}" for k, v in sorted(numbers["calls"].items())))
    per_run = results["per_completed_run"]
    lines.append(f"per completed run: {per_run['state_transitions']} state transitions (target 1), "
                 f"{per_run['lambda_invocations']} Lambda invocations (target 3)")
    per_retry = results["per_dispatch_retry"]
    lines.append(f"per dispatch retry (runner unavailable): {per_retry['state_transitions']:g} more state "
                 f"transitions, {per_retry['lambda_invocations']:g} more Lambda invocations")
    per_policy_retry = results["per_policy_retry"]
    lines.append(f"per policy retry (attempt failed, next attempt completed): "
                 f"{per_policy_retry['state_transitions']:g} more state transitions, "
                 f"{per_policy_retry['lambda_invocations']:g} more Lambda invocations (the failing callback included)")
    lines.append("per heartbeat: 0 state transitions, 1 Lambda invocation (the API)")
    scaling = results["list_runs_scaling"]
    lines.append(f"list runs, first page: {scaling['runs_10']['items_read']} items read at 10 runs, "
                 f"{scaling['runs_10000']['items_read']} at 10,000 runs: ratio {scaling['ratio']} (target 1.2)")
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = main()
    publish(outcome, RESULTS, report(outcome))
    sys.exit(0)
