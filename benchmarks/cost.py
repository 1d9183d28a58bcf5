"""`make bench`: what each operation costs, counted rather than timed.

Runs the real API handler, state machine and task Lambdas on moto. AWS calls are counted
with botocore `before-call`/`after-call` hooks on the thread that serves the request, so
Step Functions' own work (invoking the dispatcher) is not charged to the API call; it is
counted separately from the execution history. A completed run's DynamoDB write units are
estimated from the items its writes change, on every thread.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import random
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR",
})
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from benchmarks import publish
from ksflow import aws, clock
from ksflow.analytics import store as aggregates
from ksflow.api.handler import lambda_handler
from ksflow.identity import store as identity
from ksflow.identity.models import Role
from ksflow.local import gateway, lambda_runtime, provision
from ksflow.local.lambda_runtime import LocalContext
from ksflow.runindex import counters, layout
from ksflow.runner import example
from ksflow.workflows import definitions as definition_store
from ksflow.workflows import run_store, webhooks
from ksflow.workflows.models import EndedBy, RunStatus, WorkflowDefinition, WorkflowRun

RESULTS = Path(".bench/results.json")
SECRET = "bench-webhook-secret"


class CallCounter:
    """AWS API calls and DynamoDB items read, made by one thread while `measuring`.

    Items read: those a Query evaluated, and every key a GetItem or BatchGetItem asked for, found or not
    (DynamoDB charges a read for a missing key too): a read by key costs what it asks, not what it finds.
    """

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
        elif model.name == "GetItem":
            self.items_read += 1

    def keys_asked(self, params: dict[str, Any], **_: Any) -> None:
        if threading.get_ident() == self._thread:
            self.items_read += sum(len(request["Keys"]) for request in params["RequestItems"].values())

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


WEEK = timedelta(days=7)
# Runs per listing page measured.
PAGE = 10


def sample_runs(template: WorkflowRun, count: int, definitions: list[WorkflowDefinition], admins: list[str],
                now: datetime) -> list[WorkflowRun]:
    """`count` runs of a tenant over the week before `now`, newest first, the same at every bench run.

    The newest few are still open (RUNNING, PENDING), one in six of the others FAILED, the rest
    COMPLETED; the first definitions run most often, each invoked by its creator or an OWNER/ADMIN.
    """
    rng = random.Random(count)  # noqa: S311 - fixed test data, not a secret
    still_open = max(1, count // 2500)
    weights = range(len(definitions), 0, -1)
    runs = []
    for age in range(count):
        definition = rng.choices(definitions, weights)[0]
        invoker = rng.choice([definition.created_by, *(a for a in admins if a != definition.created_by)])
        created = now - WEEK * (age + rng.random()) / count
        if age < still_open:
            status = RunStatus.RUNNING if age % 2 == 0 else RunStatus.PENDING
        else:
            status = RunStatus.FAILED if age % 6 == 2 else RunStatus.COMPLETED
        started = created if status == RunStatus.PENDING else created + timedelta(seconds=rng.uniform(1, 3))
        ended = min(now, started + timedelta(seconds=rng.uniform(30, 900))) if status.terminal else None
        assert template.run_snapshot is not None
        snapshot = template.run_snapshot.model_copy(update={
            "workflow_definition_id": uuid.UUID(definition.id), "workflow_name": definition.name,
            "user_id": uuid.UUID(invoker)})
        runs.append(template.model_copy(update={
            "tenant_id": definition.tenant_id, "rix_pk": layout.partition(definition.tenant_id),
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "workflow_definition_id": definition.id, "definition_owner_id": definition.created_by,
            "user_id": invoker, "status": status, "created_at": created, "started_at": started,
            "deadline": started + timedelta(seconds=definition.max_run_duration_seconds), "completed_at": ended,
            "updated_at": ended or started, "ended_by": EndedBy.CALLBACK if ended else None,
            "error": "The runner reported a failure" if status == RunStatus.FAILED else None,
            "task_token": None if status == RunStatus.PENDING else template.task_token, "run_snapshot": snapshot,
            "runner_url": definition.runner_url, "secret_ciphertext": definition.secret_ciphertext,
            "retry_policy": definition.retry_policy, "heartbeat_timeout_seconds": definition.heartbeat_timeout_seconds,
            "idempotency_key": None}))
    return runs


def seed_runs(runs: list[WorkflowRun]) -> None:
    """Runs of one tenant stored as `run_store.insert` leaves them: items from its builder (index attributes
    included), and the counts its transactions add (the tenant's, the definition owner's, the invoker's,
    the aggregates' buckets, and each definition's run count).

    Not by `insert` itself: moto copies the whole table for every item of a transaction, so one insert takes
    seconds once the table holds a few thousand items. The items go in batches and each count item gets the
    sum of the runs' additions at once. Their events are left out: no listing reads them.
    """
    table = aws.table(os.environ["TABLE_NAME"])
    with table.batch_writer() as batch:
        for run in runs:
            batch.put_item(Item=run_store._run_item(run))
    # What deleting them all would take from each counter and bucket item (one update per item), added instead.
    for update in counters.removed(table.name, runs) + aggregates.removed(table.name, runs):
        write = update["Update"]
        amounts = {name: -amount for name, amount in write["ExpressionAttributeValues"].items()}
        table.meta.client.update_item(**{**write, "ExpressionAttributeValues": amounts})
    by_definition: dict[str, list[WorkflowRun]] = {}
    for run in runs:
        by_definition.setdefault(run.workflow_definition_id, []).append(run)
    for of_definition in by_definition.values():
        run_count = run_store._count_run(table.name, of_definition[0], len(of_definition))
        table.meta.client.update_item(**run_count["Update"])


def definition_paths(api_key: str, root: str) -> dict[str, Any]:
    """New path parts under `root` for a definition: a source folder, instructions, an output folder, a template."""

    def part(kind: str, name: str) -> str:
        body: dict[str, Any] = {"name": name, "parent_path_part_id": root}
        if kind == "documents":
            body |= {"document_type": "PLAINTEXT", "document_origin": "SOURCE"}
        return str(request("POST", f"/v1/{kind}", api_key, body)[1]["path_part_id"])

    return {"source_path_part_ids": [part("folders", "src")], "instruction_path_part_ids": [part("documents", "i.md")],
            "output_path_part_ids": [part("folders", "out")], "template_path_part_id": part("documents", "t.md")}


@dataclass(frozen=True)
class ListingTenant:
    api_key: str  # the OWNER's
    owner_id: str
    runs: list[WorkflowRun]
    seeded_at: datetime


def listing_tenant(count: int, definition: dict[str, Any], template: WorkflowRun) -> ListingTenant:
    """A tenant of an OWNER, an ADMIN and two USERs (who may write under the root), with five definitions
    (two of the OWNER's, one of the ADMIN's, one of each USER's) and `count` runs of them."""
    tenant = identity.create_tenant(f"Listing {count}", f"owner@{count}.example.com")
    admin = identity.create_user(tenant.tenant_id, f"admin@{count}.example.com", Role.ADMIN)
    users = [identity.create_user(tenant.tenant_id, f"user{n}@{count}.example.com", Role.USER) for n in (1, 2)]
    for user in users:
        granted, _ = request("POST", "/v1/user-permissions", tenant.api_key, {
            "tenant_id": tenant.tenant_id, "user_id": user.user_id, "path_part_id": tenant.root_path_part_id,
            "capability": "READ_WRITE"})
        assert granted == 201, granted
    paths = definition_paths(tenant.api_key, tenant.root_path_part_id)
    creators = [(tenant.api_key, "nightly-report"), (tenant.api_key, "weekly-digest"), (admin.api_key, "ingest-sync"),
                (users[0].api_key, "summaries"), (users[1].api_key, "triage")]
    definitions = []
    for api_key, name in creators:
        status, made = request("POST", "/v1/workflow-definitions", api_key, {**definition, **paths, "name": name})
        assert status == 201, made
        stored = definition_store.get(tenant.tenant_id, made["id"])
        assert stored is not None
        definitions.append(stored)
    now = clock.now()
    runs = sample_runs(template, count, definitions, [tenant.user_id, admin.user_id], now)
    seed_runs(runs)
    return ListingTenant(tenant.api_key, tenant.user_id, runs, now)


def listing_filters(tenant: ListingTenant) -> dict[str, tuple[str, dict[str, str], Callable[[WorkflowRun], bool]]]:
    """Each measured listing of `GET /v1/workflow-runs`: how the report names it, its query, the runs it matches."""
    after, before = tenant.seeded_at - timedelta(days=5), tenant.seeded_at - timedelta(days=2)
    busiest = Counter(run.workflow_definition_id for run in tenant.runs).most_common(1)[0][0]
    return {
        "none": ("no filter", {}, lambda run: True),
        "status": ("status=FAILED", {"status": "FAILED"}, lambda run: run.status == RunStatus.FAILED),
        "definition": ("definition_id= (its busiest)", {"definition_id": busiest},
                       lambda run: run.workflow_definition_id == busiest),
        "mine": ("mine=true", {"mine": "true"}, lambda run: run.user_id == tenant.owner_id),
        "created_range": ("created 5 to 2 days ago", {"created_after": clock.iso(after),
                                                      "created_before": clock.iso(before)},
                          lambda run: after <= run.created_at < before),
        "sort_started": ("sort_by=STARTED_AT", {"sort_by": "STARTED_AT"}, lambda run: True),
        "sort_completed": ("sort_by=COMPLETED_AT", {"sort_by": "COMPLETED_AT"}, lambda run: True),
    }


WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@dataclass
class ItemWrite:
    """One item a DynamoDB write names, as stored before the call and after it (None: absent)."""

    kind: str  # Put, Update, Delete or ConditionCheck
    table: str
    key: dict[str, Any]
    transactional: bool
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def _item_writes(operation: str, request_body: dict[str, Any]) -> Iterator[ItemWrite]:
    def key(item: dict[str, Any]) -> dict[str, Any]:
        return {"pk": item["pk"], "sk": item["sk"]}

    if operation == "TransactWriteItems":
        for entry in request_body["TransactItems"]:
            [(kind, write)] = entry.items()
            yield ItemWrite(kind, write["TableName"], key(write.get("Key") or write["Item"]), transactional=True)
    elif operation == "BatchWriteItem":
        for table_name, entries in request_body["RequestItems"].items():
            for entry in entries:
                [(kind, write)] = entry.items()
                yield ItemWrite(kind.removesuffix("Request"), table_name, key(write.get("Key") or write["Item"]),
                                transactional=False)
    else:
        yield ItemWrite(operation.removesuffix("Item"), request_body["TableName"],
                        key(request_body.get("Key") or request_body["Item"]), transactional=False)


def _stored(write: ItemWrite) -> dict[str, Any] | None:
    """The item as moto holds it (typed JSON), read from its backend: no AWS call, nothing counted."""
    item = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]].get_item(write.table, write.key)
    return copy.deepcopy(item.to_json()["Attributes"]) if item else None


class WriteRecorder:
    """DynamoDB writes made by any thread (the API's, the dispatcher's, the failure Lambda's) while `recording`."""

    def __init__(self) -> None:
        self.calls: list[list[ItemWrite]] = []
        self.recording = False

    def before_call(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self.recording and model.name in WRITE_OPERATIONS:
            context["item_writes"] = writes = list(_item_writes(model.name, json.loads(params["body"])))
            for write in writes:
                write.before = _stored(write)

    def after_call(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        writes = context.get("item_writes")
        if writes is not None and http_response.status_code == 200:
            for write in writes:
                write.after = _stored(write)
            self.calls.append(writes)

    def of_item(self, pk: str) -> list[ItemWrite]:
        """Every item written by the calls that wrote an item of partition `pk` (a run and its events)."""
        return [write for call in self.calls if any(w.key["pk"] == {"S": pk} for w in call) for write in call]


def _value_size(value: dict[str, Any]) -> int:
    """Bytes of a typed attribute value by DynamoDB's sizing rules, roughly (numbers: digits / 2 + 1)."""
    [(kind, data)] = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return len(data.lstrip("-").replace(".", "").strip("0")) // 2 + 1
    if kind == "B":
        return len(base64.b64decode(data))
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: member}) for member in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(member) for member in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(member) for name, member in data.items())
    return 1  # BOOL, NULL


def _item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in (item or {}).items())


def _units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _index_entry(index: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any] | None:
    """The item as `index` holds it; None if it lacks one of the index's keys."""
    keys = [key["AttributeName"] for key in index["KeySchema"]]
    if item is None or any(key not in item for key in keys):
        return None
    projection = index["Projection"]
    if projection["ProjectionType"] == "ALL":
        return item
    held = {"pk", "sk", *keys, *projection.get("NonKeyAttributes", [])}
    return {name: value for name, value in item.items() if name in held}


def _index_units(index: dict[str, Any], before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    """An index entry put, deleted or rewritten in place; a moved key is a delete and a put."""
    old, new = _index_entry(index, before), _index_entry(index, after)
    if old == new:
        return 0
    keys = [key["AttributeName"] for key in index["KeySchema"]]
    if old is not None and new is not None and all(old[key] == new[key] for key in keys):
        return _units(_item_size(new))
    return sum(_units(_item_size(entry)) for entry in (old, new) if entry is not None)


def write_units(writes: list[ItemWrite], indexes: list[dict[str, Any]]) -> Counter[str]:
    """Estimated write request units of `writes` by table (`table`) and index name.

    DynamoDB's rules: a write costs one unit per KB of the larger of the item before and after it,
    twice in a transaction (a ConditionCheck included); each index whose entry the write puts,
    deletes or changes costs one unit per KB of that entry (index writes are not doubled).
    """
    units: Counter[str] = Counter()
    for write in writes:
        units["table"] += _units(max(_item_size(write.before), _item_size(write.after))) * (
            2 if write.transactional else 1)
        for index in indexes:
            units[index["IndexName"]] += _index_units(index, write.before, write.after)
    return units


def main() -> dict[str, Any]:
    lambda_runtime.install()
    counter = CallCounter()
    recorder = WriteRecorder()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call", counter.before_call)
        session.events.register("after-call", counter.after_call)
        session.events.register("before-parameter-build.dynamodb.BatchGetItem", counter.keys_asked)
        session.events.register("before-call.dynamodb", recorder.before_call)
        session.events.register("after-call.dynamodb", recorder.after_call)
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

        definition = {
            "name": "bench", "runner_type": "SELF_HOSTED",
            "runner_config": {"url": runner_url, "webhook_secret": SECRET}, **definition_paths(key, root),
        }
        operations: dict[str, dict[str, Any]] = {}

        def counted(action: Callable[[], tuple[int, Any]]) -> tuple[dict[str, Any], Any]:
            with counter.measuring():
                status, body = action()
            return {"aws_calls": sum(counter.calls.values()), "calls": dict(counter.calls),
                    "items_read": counter.items_read, "status": status}, body

        def measure(name: str, action: Callable[[], tuple[int, Any]]) -> Any:
            action()  # warm: caches filled, as in a warm Lambda container
            operations[name], body = counted(action)
            return body

        created = measure("create_definition", lambda: request("POST", "/v1/workflow-definitions", key, definition))
        definition_id = created["id"]
        recorder.recording = True
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
        recorder.recording = False
        described = boto3.client("dynamodb").describe_table(TableName=env["TABLE_NAME"])["Table"]
        run_writes = recorder.of_item(f"RUN#{run['id']}")
        run_units = write_units(run_writes, described["GlobalSecondaryIndexes"])
        table_units = run_units.pop("table")
        write_estimate = {"total": table_units + sum(run_units.values()), "table": table_units,
                          "indexes": sum(run_units.values()), "by_index": dict(sorted(run_units.items())),
                          "items_written": len(run_writes)}

        # One policy retry: attempt 1 reports FAILED, attempt 2 completes.
        retrying = request("POST", "/v1/workflow-definitions", key, {
            **definition, "retry_policy": {"max_attempts": 2, "backoff_seconds": 1, "backoff_multiplier": 1}})[1]
        failing = request("POST", f"/v1/workflow-definitions/{retrying['id']}/invoke", key, {})[1]
        wait_for(lambda: request("GET", f"/v1/workflow-runs/{failing['id']}", key)[1]["status"] == "RUNNING")
        operations["callback_failed_then_retried"], _ = counted(lambda: signed_callback(failing["id"], "FAILED"))
        wait_for(lambda: request("GET", f"/v1/workflow-runs/{failing['id']}", key)[1]["attempt"] == 2)
        with_policy_retry = completed_run_cost(failing["id"], api_invocations=3)
        with_policy_retry.pop("dispatch_retries")
        per_policy_retry = {name: with_policy_retry[name] - per_run[name] for name in with_policy_retry}

        # One retry by hand of a stopped run: a new execution for the new attempt.
        stopped = running_run()
        request("POST", f"/v1/workflow-runs/{stopped}/stop", key)
        operations["retry_by_hand"], _ = counted(lambda: request("POST", f"/v1/workflow-runs/{stopped}/retry", key))

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
            scaled = definition_store.get(tenant.tenant_id, request("POST", "/v1/workflow-definitions", key,
                                                                    definition)[1]["id"])
            assert scaled is not None
            seed_runs(sample_runs(template, total, [scaled], [tenant.user_id], clock.now()))
            # Both pages hold 10 runs, so the ratio shows only what a longer history costs.
            first_page = f"/v1/workflow-definitions/{scaled.id}/runs?limit=10"
            page = measure(f"list_runs_{label}", lambda path=first_page: request("GET", path, key))  # type: ignore[misc]
            assert (page["total"], len(page["items"])) == (total, 10), (page["total"], len(page["items"]))
            scaling[label] = operations.pop(f"list_runs_{label}")
        scaling["ratio"] = round(scaling["runs_10000"]["items_read"] / scaling["runs_10"]["items_read"], 3)

        # The tenant's runs filtered: the first page as the OWNER, in a tenant of 10 runs and in one of 10,000.
        # moto takes up to a minute over a listing of the large tenant; a warm container would still hold the key.
        identity.AUTH_CACHE_SECONDS = 3600
        listings: dict[str, dict[str, Any]] = {}
        analytics: dict[str, dict[str, Any]] = {}
        analytics_errors: dict[str, dict[str, float]] = {}
        for label, total in (("runs_10", 10), ("runs_10000", 10_000)):
            scaled_tenant = listing_tenant(total, definition, template)
            request("GET", f"/v1/workflow-runs?limit={PAGE}", scaled_tenant.api_key)  # warm: the OWNER's key cached
            for name, (shown, query, matches) in listing_filters(scaled_tenant).items():
                path = "/v1/workflow-runs?" + urlencode({**query, "limit": PAGE})
                numbers, page = counted(partial(request, "GET", path, scaled_tenant.api_key))
                matching = sum(1 for seeded in scaled_tenant.runs if matches(seeded))
                assert numbers["status"] == 200 and matching > 0, (path, numbers["status"], page, matching)
                assert (page["total"], len(page["items"])) == (matching, min(PAGE, matching)), (path, page, matching)
                listings.setdefault(name, {"query": shown})[label] = {**numbers, "runs_returned": len(page["items"]),
                                                                      "total": page["total"]}
            for path in ANALYTICS:
                numbers, report_body = counted(partial(request, "GET", path, scaled_tenant.api_key))
                assert numbers["status"] == 200, (path, report_body)
                analytics.setdefault(path, {})[label] = numbers
                if path.startswith("/v1/admin/workflows/summary"):
                    assert report_body["total"] == total, report_body
                    analytics_errors[label] = percentile_errors(report_body, scaled_tenant.runs)
        for listing in listings.values():
            small, large = listing["runs_10"], listing["runs_10000"]
            listing["ratio"] = round(large["items_read"] / large["runs_returned"]
                                     / (small["items_read"] / small["runs_returned"]), 3)

        for numbers in analytics.values():
            numbers["ratio"] = round(numbers["runs_10000"]["items_read"] / numbers["runs_10"]["items_read"], 3)

        for run_id in [r["id"] for r in request("GET", f"/v1/workflow-definitions/{definition_id}/runs", key,
                                                 )[1]["items"] if r["status"] in ("PENDING", "RUNNING")]:
            wait_for(lambda run_id=run_id: signed_callback(run_id, "COMPLETED")[0] == 200)  # type: ignore[misc]
        wait_for(lambda: not sfn.list_executions(stateMachineArn=env["RUN_STATE_MACHINE_ARN"],
                                                 statusFilter="RUNNING")["executions"])
        silent.shutdown()
        server.shutdown()
    return {"operations": operations, "per_completed_run": per_run, "per_dispatch_retry": per_retry,
            "per_policy_retry": per_policy_retry, "list_runs_scaling": scaling, "run_listing_scaling": listings,
            "write_units_per_completed_run": write_estimate, "analytics_scaling": analytics,
            "percentile_errors": analytics_errors}


# Summary and admin analytics over the default window (the last 7 days, where the seeded runs are).
ANALYTICS = ("/v1/workflow-runs/summary", "/v1/admin/workflows/summary",
             "/v1/admin/workflows/timeseries?bucket=hour&timezone=Asia/Kolkata",
             "/v1/admin/workflows/by-hour?timezone=Asia/Kathmandu", "/v1/admin/workflows/leaderboard?limit=10")


def percentile_errors(summary: dict[str, Any], runs: list[WorkflowRun]) -> dict[str, float]:
    """Relative error of the summary's p50 and p95 against nearest-rank percentiles of the ended runs' durations."""
    durations = sorted((run.completed_at - run.started_at).total_seconds() for run in runs
                       if run.status.terminal and run.completed_at is not None)
    errors: dict[str, float] = {}
    for p in (50, 95):
        exact = durations[max(1, math.ceil(p / 100 * len(durations))) - 1]
        errors[f"p{p}"] = round(abs(summary[f"duration_p{p}_seconds"] - exact) / exact, 4)
    return errors


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
    lines.append(f"run listings, first page at limit={PAGE} as the OWNER: items read (runs returned), AWS calls, "
                 "in a tenant of 10 runs and of 10,000")
    for listing in results["run_listing_scaling"].values():
        small, large = listing["runs_10"], listing["runs_10000"]
        lines.append(f"  {listing['query']:<30}{small['items_read']:>6} ({small['runs_returned']:>2}), "
                     f"{small['aws_calls']} calls{large['items_read']:>8} ({large['runs_returned']:>2}), "
                     f"{large['aws_calls']} calls   ratio {listing['ratio']}")
    lines.append("  ratio: items read per run returned at 10,000 runs over the same at 10 (target 1.2); the 10-run "
                 "tenant returns fewer runs where fewer match. A created range's total adds the aggregates of its "
                 "whole 15-minute buckets (read by key) to a count of the index keys in its two partial buckets")
    lines.append("summary and admin analytics over the default 7-day window: items read (keys asked), AWS calls, "
                 "in a tenant of 10 runs and of 10,000")
    for path, numbers in results["analytics_scaling"].items():
        small, large = numbers["runs_10"], numbers["runs_10000"]
        lines.append(f"  {path:<70}{small['items_read']:>6}, {small['aws_calls']} calls{large['items_read']:>6}, "
                     f"{large['aws_calls']} calls   ratio {numbers['ratio']} (target 1.2)")
    for label, errors in results["percentile_errors"].items():
        lines.append(f"  duration percentiles at {label}: relative error p50 {errors['p50']:.2%}, "
                     f"p95 {errors['p95']:.2%} (target 5%)")
    units = results["write_units_per_completed_run"]
    lines.append(f"per completed run: ~{units['total']} WRU (table {units['table']}, indexes {units['indexes']}), "
                 "an estimate from the sizes of the items its writes change")
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = main()
    publish(outcome, RESULTS, report(outcome))
    sys.exit(0)
