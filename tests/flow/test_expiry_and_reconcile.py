"""Runs end even when their execution never started or died: expiry schedules and reconciliation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from ksflow.identity.models import CreatedTenant
from ksflow.local import scheduler
from ksflow.orchestration import reconcile
from tests.conftest import call_api, definition_body, shorten_time_limit


@pytest.fixture
def stranded_run(aws_env: dict[str, str], tenant: CreatedTenant, knowledge: dict[str, str],
                 monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A run whose execution never started, as if the API crashed right after writing it."""
    monkeypatch.setattr("ksflow.orchestration.executions.start", lambda run_id, timeout: None)
    created = call_api("POST", "/v1/workflow-definitions", definition_body(knowledge, "http://127.0.0.1:9/"),
                       tenant.api_key)
    shorten_time_limit(tenant, created.body["id"], 1)
    run = call_api("POST", f"/v1/workflow-definitions/{created.body['id']}/invoke", {}, tenant.api_key).body
    assert run["status"] == "PENDING"
    return dict(run)


def _status(tenant: CreatedTenant, run_id: str) -> dict[str, Any]:
    return dict(call_api("GET", f"/v1/workflow-runs/{run_id}", api_key=tenant.api_key).body)


def test_expiry_schedule_fails_a_stranded_run_after_its_deadline(aws_env: dict[str, str], tenant: CreatedTenant,
                                                                 stranded_run: dict[str, Any]) -> None:
    client = boto3.client("scheduler")
    group = aws_env["SCHEDULER_GROUP_NAME"]
    schedules = client.list_schedules(GroupName=group)["Schedules"]
    assert [s["Name"] for s in schedules] == [f"run-expiry-{stranded_run['id']}"]

    now = datetime.now(UTC)
    local_scheduler = scheduler.LocalScheduler(client, boto3.client("lambda"), [group])
    assert local_scheduler.fire_due_schedules(now) == 0
    assert _status(tenant, stranded_run["id"])["status"] == "PENDING"

    time.sleep(1.1)  # past the deadline; the schedule itself is due a grace second later
    later = now + timedelta(seconds=1 + 2)
    assert local_scheduler.fire_due_schedules(later) == 1
    run = _status(tenant, stranded_run["id"])
    assert run["status"] == "FAILED"
    assert "exceeded its time limit of 1 seconds" in run["error"]
    assert client.list_schedules(GroupName=group)["Schedules"] == []


def test_expiry_before_the_deadline_changes_nothing(aws_env: dict[str, str], tenant: CreatedTenant,
                                                    stranded_run: dict[str, Any]) -> None:
    from ksflow.orchestration import expiry

    assert expiry.expire(stranded_run["id"]) is False
    assert _status(tenant, stranded_run["id"])["status"] == "PENDING"


def test_aborted_execution_is_reconciled(aws_env: dict[str, str], tenant: CreatedTenant,
                                         stranded_run: dict[str, Any]) -> None:
    detail = {"name": stranded_run["workflow_id"], "status": "ABORTED"}
    assert reconcile.reconcile(detail) is True
    run = _status(tenant, stranded_run["id"])
    assert run["status"] == "FAILED" and "ABORTED" in run["error"]
    assert reconcile.reconcile(detail) is False  # the first terminal state stays
    assert _status(tenant, stranded_run["id"])["error"] == run["error"]
