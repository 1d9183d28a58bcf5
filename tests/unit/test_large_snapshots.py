"""The largest legal definition runs: its snapshot is written and read back whole, still frozen.

61 references, each 30 folders deep with 250 four-byte characters per name, freeze into about
1.8 MB of JSON: past DynamoDB's 400 KB item limit, so the snapshot lives in S3. Every
response that returns such runs stays under Lambda's 6 MB response limit, which the local
stack does not enforce, so the size of the handler's result is measured here.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from ksflow.identity.models import CreatedTenant
from ksflow.local import gateway
from ksflow.local.lambda_runtime import LocalContext
from tests.conftest import RUNNER_SECRET, Runner, api_handler, call_api, wait_for, wait_for_executions
from tests.unit.conftest import callback, get_run

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024
DEPTH = 30


def long_name(index: int) -> str:
    return "📁" * 249 + chr(0x1F600 + index)


def lambda_result(method: str, path: str, api_key: str) -> tuple[int, Any, int]:
    """Status, parsed body and size of the handler's result as the Lambda runtime serializes it."""
    event = gateway.to_event(method, path, {"authorization": f"Bearer {api_key}"}, b"", "127.0.0.1")
    result = api_handler(event, LocalContext(function_name="ksflow-Api", timeout_seconds=30))
    size = len(json.dumps(result).encode())
    body = result["body"]
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return result["statusCode"], json.loads(body), size


@pytest.fixture
def deep_tree(tenant: CreatedTenant) -> dict[str, Any]:
    """A chain of folders 29 deep; under its last one, the 61 parts a maximal definition references."""
    parent = tenant.root_path_part_id
    for level in range(DEPTH - 1):
        created = call_api("POST", "/v1/folders", {"name": long_name(level), "parent_path_part_id": parent},
                           tenant.api_key)
        assert created.status == 201, created.body
        parent = created.body["path_part_id"]

    def make(kind: str, index: int) -> dict[str, Any]:
        body: dict[str, Any] = {"name": long_name(index), "parent_path_part_id": parent}
        if kind == "documents":
            body |= {"document_type": "PLAINTEXT", "document_origin": "SOURCE"}
        created = call_api("POST", f"/v1/{kind}", body, tenant.api_key)
        assert created.status == 201, created.body
        return dict(created.body)

    return {"sources": [make("folders", i) for i in range(20)],
            "instructions": [make("documents", 20 + i) for i in range(20)],
            "outputs": [make("folders", 40 + i) for i in range(20)],
            "template": make("documents", 60)}


@pytest.fixture
def largest_definition(aws_env: dict[str, str], tenant: CreatedTenant, deep_tree: dict[str, Any],
                       runner_factory: Callable[..., Runner]) -> Iterator[dict[str, Any]]:
    runner = runner_factory(delay=3600)
    body = {
        "name": "🧾" * 255, "runner_type": "SELF_HOSTED",
        "runner_config": {"url": runner.url, "webhook_secret": RUNNER_SECRET},
        "source_path_part_ids": [p["path_part_id"] for p in deep_tree["sources"]],
        "instruction_path_part_ids": [p["path_part_id"] for p in deep_tree["instructions"]],
        "output_path_part_ids": [p["path_part_id"] for p in deep_tree["outputs"]],
        "template_path_part_id": deep_tree["template"]["path_part_id"],
        "max_run_duration_seconds": 600,
    }
    created = call_api("POST", "/v1/workflow-definitions", body, tenant.api_key)
    assert created.status == 201, created.body
    yield dict(created.body)
    listed = call_api("GET", f"/v1/workflow-definitions/{created.body['id']}/runs?limit=100", api_key=tenant.api_key)
    offset = 0
    while offset < listed.body["total"]:
        page = call_api("GET", f"/v1/workflow-definitions/{created.body['id']}/runs?offset={offset}",
                        api_key=tenant.api_key).body
        for run in page["items"]:
            if run["status"] in ("PENDING", "RUNNING"):
                callback(run["id"], {"status": "COMPLETED"}, secret=None, api_key=tenant.api_key)
        offset += len(page["items"])
    wait_for_executions(aws_env["RUN_STATE_MACHINE_ARN"])


def test_the_largest_snapshot_is_stored_and_read_back_whole_and_frozen(
        aws_env: dict[str, str], tenant: CreatedTenant, deep_tree: dict[str, Any],
        largest_definition: dict[str, Any]) -> None:
    invoked = call_api("POST", f"/v1/workflow-definitions/{largest_definition['id']}/invoke", {}, tenant.api_key)
    assert invoked.status == 202, invoked.body
    snapshot = invoked.body["run_snapshot"]
    assert len(json.dumps(snapshot, ensure_ascii=False).encode()) > 1_700_000
    expected = [p["materialized_path"] for p in deep_tree["sources"]]
    assert [s["materialized_path"] for s in snapshot["sources"]] == expected
    assert all(path.count("/") == DEPTH for path in expected)

    # Frozen: a source deleted afterwards stays in the snapshot.
    doomed = deep_tree["sources"][0]
    assert call_api("DELETE", f"/v1/folders/{doomed['id']}", api_key=tenant.api_key).status == 204
    status, body, size = lambda_result("GET", f"/v1/workflow-runs/{invoked.body['id']}", tenant.api_key)
    assert status == 200
    assert body["run_snapshot"] == snapshot
    assert size < LAMBDA_RESPONSE_LIMIT
    # The run item itself stays small; the dispatcher sent the whole snapshot to the runner.
    item = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"]).get_item(
        Key={"pk": f"RUN#{invoked.body['id']}", "sk": "RUN"})["Item"]
    assert len(json.dumps(item, default=str).encode()) < 64 * 1024
    assert wait_for(lambda: get_run(invoked.body["id"], tenant.api_key)["status"] == "RUNNING", timeout=20)


def test_pages_of_large_runs_stay_under_the_response_limit(
        aws_env: dict[str, str], tenant: CreatedTenant, largest_definition: dict[str, Any]) -> None:
    run_ids = [call_api("POST", f"/v1/workflow-definitions/{largest_definition['id']}/invoke", {},
                        tenant.api_key).body["id"] for _ in range(5)]
    seen: list[str] = []
    offset = 0
    while offset < len(run_ids):
        status, page, size = lambda_result(
            "GET", f"/v1/workflow-definitions/{largest_definition['id']}/runs?limit=20&offset={offset}",
            tenant.api_key)
        assert status == 200
        assert size < LAMBDA_RESPONSE_LIMIT, size
        assert page["total"] == 5 and page["limit"] == 20
        assert 1 <= len(page["items"]) < 5
        assert all(len(item["run_snapshot"]["sources"]) == 20 for item in page["items"])
        seen += [item["id"] for item in page["items"]]
        offset += len(page["items"])
    assert seen == list(reversed(run_ids))
    # Deleting a run removes its snapshot object too.
    assert callback(run_ids[0], {"status": "COMPLETED"}, secret=None, api_key=tenant.api_key).status == 200
    deleted = call_api("DELETE", f"/v1/workflow-runs/{run_ids[0]}", api_key=tenant.api_key)
    assert deleted.status == 204
    objects = boto3.client("s3").list_objects_v2(Bucket=os.environ["DOCUMENTS_BUCKET"],
                                                 Prefix=f"tenants/{tenant.tenant_id}/run-snapshots/")
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in objects.get("Contents", [])) == sorted(
        f"{run_id}.json" for run_id in run_ids[1:])


def test_folders_and_documents_nest_at_most_fifty_levels(tenant: CreatedTenant) -> None:
    """The depth limit bounds every path, so the largest snapshot always fits a response."""
    parent = tenant.root_path_part_id
    for level in range(50):
        created = call_api("POST", "/v1/folders", {"name": long_name(level), "parent_path_part_id": parent},
                           tenant.api_key)
        assert created.status == 201, (level, created.body)
        parent = created.body["path_part_id"]
    assert created.body["materialized_path"].count("/") == 50
    too_deep = call_api("POST", "/v1/folders", {"name": "one more", "parent_path_part_id": parent}, tenant.api_key)
    assert too_deep.status == 422, too_deep.body
    assert "50 levels" in too_deep.body["detail"][0]["msg"]
    document = call_api("POST", "/v1/documents", {"name": "d", "parent_path_part_id": parent,
                                                  "document_type": "PLAINTEXT", "document_origin": "SOURCE"},
                        tenant.api_key)
    assert document.status == 422, document.body
