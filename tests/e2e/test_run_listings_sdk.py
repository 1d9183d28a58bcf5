"""Run listings, summaries and analytics through the local stack's HTTP port, on runs a real runner ended.

The stack is shared with other tests, so every check is scoped to this test's own definitions (or
compares before and after). Items are parsed with the `ksapi` 1.80.1 run model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ksapi
import pytest

from tests.e2e.conftest import LocalStack
from tests.e2e.test_local_stack_sdk import WEBHOOK_SECRET, _await_end, _client, _knowledge
from tests.e2e.test_run_lifecycle_sdk import _create_definition, _definition_body, _http

pytestmark = pytest.mark.e2e


def _get(stack: LocalStack, path: str) -> Any:
    status, body, _ = _http(stack, "GET", path)
    assert status == 200, (path, body)
    return body


def test_listings_and_summaries_of_runs_a_runner_ended(local_stack: LocalStack,
                                                       start_runner: Callable[..., str]) -> None:
    client = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    happy = _create_definition(local_stack, _definition_body(parts, start_runner(WEBHOOK_SECRET), WEBHOOK_SECRET))
    failing = _create_definition(local_stack, {
        **_definition_body(parts, start_runner(WEBHOOK_SECRET, "--fail"), WEBHOOK_SECRET), "name": "Always fails"})
    before = _get(local_stack, "/v1/admin/workflows/summary")
    invoke = ksapi.WorkflowDefinitionsApi(client).invoke_workflow
    runs = [invoke(happy["id"], ksapi.InvokeWorkflowRequest()) for _ in range(2)]
    runs.append(invoke(failing["id"], ksapi.InvokeWorkflowRequest()))
    for run in runs:
        _await_end(client, run.id)

    completed = _get(local_stack, f"/v1/workflow-runs?definition_id={happy['id']}&status=COMPLETED")
    assert completed["total"] == 2
    assert [item["id"] for item in completed["items"]] == [str(runs[1].id), str(runs[0].id)]
    for item in completed["items"]:
        ksapi.WorkflowRunResponse.model_validate(item)
    mine = _get(local_stack, "/v1/workflow-runs?mine=true&status=FAILED&limit=100")
    assert str(runs[2].id) in {item["id"] for item in mine["items"]}
    by_completion = _get(local_stack, f"/v1/workflow-runs?definition_id={happy['id']}&sort_by=COMPLETED_AT"
                                      "&sort_dir=ASC")["items"]
    assert {item["id"] for item in by_completion} == {str(runs[0].id), str(runs[1].id)}
    assert by_completion[0]["completed_at"] <= by_completion[1]["completed_at"]

    summary = _get(local_stack, f"/v1/workflow-runs/summary?definition_id={failing['id']}")
    assert (summary["total"], summary["counts_by_state"]["FAILED"], summary["failure_rate"]) == (1, 1, 1.0)
    after = _get(local_stack, "/v1/admin/workflows/summary")
    assert after["total"] - before["total"] == 3
    assert after["counts_by_state"]["COMPLETED"] - before["counts_by_state"]["COMPLETED"] == 2
    assert after["duration_p50_seconds"] is not None
    hours = _get(local_stack, "/v1/admin/workflows/by-hour?timezone=Asia/Kolkata")
    assert sum(hours["counts_by_hour"]) == after["total"]
    board = _get(local_stack, "/v1/admin/workflows/leaderboard?limit=50")
    assert {"id": happy["id"], "name": happy["name"], "count": 2} in board["top_workflows"]
