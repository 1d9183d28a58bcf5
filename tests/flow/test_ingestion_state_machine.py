"""The ingestion state machine executed by moto with the real task handlers."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

from ksflow import aws
from ksflow.identity.models import CreatedTenant
from ksflow.ingestion import executions, store
from ksflow.local import lambda_runtime
from tests import documents
from tests.conftest import wait_for


def _history(env: dict[str, str], execution_name: str) -> list[dict[str, Any]]:
    client = boto3.client("stepfunctions")
    arn = env["INGESTION_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + ":" + execution_name
    wait_for(lambda: client.describe_execution(executionArn=arn)["status"] != "RUNNING")
    return list(client.get_execution_history(executionArn=arn)["events"])


def _entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


ONE_RANGE = ["ExtractChunkAndStore", "MoreOfTheFile", "Done"]


def test_a_small_file_is_one_range_and_one_invocation(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    lambda_runtime.invocations.clear()
    created = documents.ingest(tenant.root_path_part_id, "policy.md", documents.markdown(), tenant.api_key)
    final = documents.finished(created["workflow_id"], tenant.api_key)
    events = _history(aws_env, final["run_id"])
    assert _entered(events) == ONE_RANGE
    assert events[-1]["type"] == "ExecutionSucceeded"
    output = json.loads(events[-1]["executionSucceededEventDetails"]["output"])
    assert output == {"status": "completed", "chunks": final["chunks_processed"], "cursor": None}
    assert lambda_runtime.invocations == {"ksflow-Ingest": 1}


def test_unreadable_file_is_recorded_by_the_task_itself(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    """A bad upload is no outage: one invocation, and the execution succeeds (no function error, no alarm)."""
    lambda_runtime.invocations.clear()
    created = documents.ingest(tenant.root_path_part_id, "letter.docx", b"not a word file", tenant.api_key)
    final = documents.finished(created["workflow_id"], tenant.api_key)
    assert final["status"] == "failed" and final["error"].startswith("The DOCX file could not be read")
    assert final["execution_status"] == "FAILED"
    events = _history(aws_env, final["run_id"])
    assert _entered(events) == ONE_RANGE
    assert events[-1]["type"] == "ExecutionSucceeded"
    assert json.loads(events[-1]["executionSucceededEventDetails"]["output"]) == {
        "status": "failed", "chunks": None, "cursor": None}
    assert lambda_runtime.invocations == {"ksflow-Ingest": 1}


def test_unexpected_errors_are_recorded_too(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    created = documents.ingest(tenant.root_path_part_id, "notes.txt", documents.text(), tenant.api_key)
    documents.finished(created["workflow_id"], tenant.api_key)
    ingestion = store.get(tenant.tenant_id, created["document_version_id"])
    assert ingestion is not None
    # Point a new attempt at a file that is not there, as if the bucket lost it.
    restarted = store.restart(ingestion, f"{created['workflow_id']}-2")
    assert restarted is not None
    aws.table(os.environ["TABLE_NAME"]).update_item(
        Key=store.key(tenant.tenant_id, created["document_version_id"]),
        UpdateExpression="SET object_key = :k", ExpressionAttributeValues={":k": "tenants/missing"})
    lambda_runtime.invocations.clear()
    executions.start(restarted)
    final = documents.finished(created["workflow_id"], tenant.api_key)
    assert final["status"] == "failed" and final["run_id"].endswith("-2")
    assert final["error"].startswith("Ingestion failed unexpectedly: ") and "NoSuchKey" in final["error"]
    assert final["execution_status"] == "FAILED"
    events = _history(aws_env, final["run_id"])
    assert _entered(events) == ["ExtractChunkAndStore", "RecordFailure"]
    assert events[-1]["type"] == "ExecutionSucceeded"
    assert lambda_runtime.invocations == {"ksflow-Ingest": 1, "ksflow-IngestionFailure": 1}


def test_a_late_task_of_a_cancelled_execution_changes_nothing(aws_env: dict[str, str],
                                                              tenant: CreatedTenant) -> None:
    from ksflow.ingestion import failure, pipeline

    created = documents.ingest(tenant.root_path_part_id, "notes.txt", documents.text(), tenant.api_key)
    final = documents.finished(created["workflow_id"], tenant.api_key)
    version_id = created["document_version_id"]
    assert pipeline.ingest(tenant.tenant_id, version_id, final["run_id"])["status"] == "skipped"
    assert pipeline.ingest(tenant.tenant_id, version_id, "ingest-other-execution")["status"] == "skipped"
    assert failure.record_failure(tenant.tenant_id, version_id, final["run_id"], {"Error": "X"}) is False
    assert documents.detail(created["workflow_id"], tenant.api_key)["status"] == "completed"
