"""Deletes too large for their request finish in the deletion state machine (moto runs the real ASL and task).

The request's budget is one part and each task's three, so even a small tree takes several tasks.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from ksflow import aws
from ksflow.identity.models import CreatedTenant
from ksflow.knowledge import store
from ksflow.local import resume
from tests import documents
from tests.conftest import call_api, upload, wait_for
from tests.unit.test_api_knowledge import create_document, create_folder


@pytest.fixture
def small_budgets(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELETE_INLINE_PARTS", "1")
    monkeypatch.setenv("DELETE_STEP_PARTS", "3")


@pytest.fixture
def deep(tenant: CreatedTenant, small_budgets: None) -> dict[str, Any]:
    """/a/b/c/d folders; an ingested file in /a/b and in /a/b/c/d, a metadata-only document in /a."""
    a = create_folder(tenant.root_path_part_id, "a", tenant.api_key)
    b = create_folder(a["path_part_id"], "b", tenant.api_key)
    c = create_folder(b["path_part_id"], "c", tenant.api_key)
    d = create_folder(c["path_part_id"], "d", tenant.api_key)
    create_document(a["path_part_id"], "plain.md", tenant.api_key)
    files = [documents.ingest(folder["path_part_id"], "notes.txt", documents.text(2), tenant.api_key)
             for folder in (b, d)]
    for created in files:
        documents.finished(created["workflow_id"], tenant.api_key)
    return {"a": a, "b": b, "c": c, "d": d, "files": files}


def _stored(tenant: CreatedTenant) -> set[str]:
    items = aws.table(os.environ["TABLE_NAME"]).query(
        KeyConditionExpression=Key("pk").eq(f"TENANT#{tenant.tenant_id}"))["Items"]
    return {i["sk"] for i in items if not i["sk"].startswith(("TENANT", "USER", "APIKEY"))}


def _execution(aws_env: dict[str, str], folder: dict[str, Any]) -> dict[str, Any]:
    arn = aws_env["DELETION_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:")
    client = boto3.client("stepfunctions")
    arn += f":delete-{folder['path_part_id']}"
    wait_for(lambda: client.describe_execution(executionArn=arn)["status"] != "RUNNING", timeout=60)
    return {"status": client.describe_execution(executionArn=arn)["status"],
            "events": client.get_execution_history(executionArn=arn, maxResults=1000)["events"]}


def _assert_only_the_root_is_left(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    root = store.get_path_part(tenant.tenant_id, tenant.root_path_part_id)
    assert root is not None
    assert _stored(tenant) == {f"PATHPART#{root.path_part_id}", f"OBJECT#{root.metadata_obj_id}"}
    listed = boto3.client("s3").list_object_versions(Bucket=aws_env["DOCUMENTS_BUCKET"])
    assert not listed.get("Versions") and not listed.get("DeleteMarkers"), listed


def test_a_large_delete_disappears_at_once_and_finishes_in_the_background(
        aws_env: dict[str, str], tenant: CreatedTenant, deep: dict[str, Any]) -> None:
    assert call_api("DELETE", f"/v1/folders/{deep['a']['id']}", api_key=tenant.api_key).status == 204

    root = call_api("GET", "/v1/folders/" + str(tenant_root_object(tenant)) + "/contents",
                    api_key=tenant.api_key).body
    assert root["items"] == [] and root["total"] == 0
    for name in ("a", "b", "c", "d"):
        assert call_api("GET", f"/v1/folders/{deep[name]['id']}", api_key=tenant.api_key).status == 404, name
    # A create under the deepest folder, not yet reached by the walk, is 404 too.
    parent = deep["d"]["path_part_id"]
    assert call_api("POST", "/v1/folders", {"name": "late", "parent_path_part_id": parent},
                    tenant.api_key).status == 404
    assert upload("/v1/documents/ingest", "late.txt", documents.text(1), tenant.api_key,
                  {"path_part_id": parent}).status == 404
    assert call_api("DELETE", f"/v1/folders/{deep['a']['id']}", api_key=tenant.api_key).status == 404

    execution = _execution(aws_env, deep["a"])
    assert execution["status"] == "SUCCEEDED"
    tasks = [e for e in execution["events"] if e["type"] == "TaskSucceeded"]
    assert len(tasks) >= 3
    _assert_only_the_root_is_left(aws_env, tenant)
    for created in deep["files"]:
        assert call_api("GET", f"/v1/workflows/document_versions/{created['workflow_id']}",
                        api_key=tenant.api_key).status == 404
    assert create_folder(tenant.root_path_part_id, "a", tenant.api_key)["materialized_path"] == "/a"


def test_a_task_that_crashes_is_retried_and_the_delete_finishes(
        aws_env: dict[str, str], tenant: CreatedTenant, deep: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = store.remove
    calls: list[int] = []

    def crash_in_the_second_removal(parts: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("DynamoDB connection reset")
        real(parts)

    monkeypatch.setattr(store, "remove", crash_in_the_second_removal)
    assert call_api("DELETE", f"/v1/folders/{deep['a']['id']}", api_key=tenant.api_key).status == 204

    execution = _execution(aws_env, deep["a"])
    assert execution["status"] == "SUCCEEDED"
    assert [e for e in execution["events"] if e["type"] == "TaskFailed"]
    _assert_only_the_root_is_left(aws_env, tenant)


def tenant_root_object(tenant: CreatedTenant) -> str:
    root = store.get_path_part(tenant.tenant_id, tenant.root_path_part_id)
    assert root is not None
    return root.metadata_obj_id


def test_a_restarted_local_stack_takes_up_a_deletion_again(
        aws_env: dict[str, str], tenant: CreatedTenant, deep: dict[str, Any]) -> None:
    """As if the stack stopped right after the request detached /a: no execution, the subtree still stored."""
    part = store.get_path_part(tenant.tenant_id, deep["a"]["path_part_id"])
    assert part is not None
    store.detach(part)
    resumed = resume.resume_open_work()
    assert resumed.deletions == [part.path_part_id]
    assert _execution(aws_env, deep["a"])["status"] == "SUCCEEDED"
    _assert_only_the_root_is_left(aws_env, tenant)
