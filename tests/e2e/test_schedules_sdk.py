"""Scheduled definitions on the local stack: a run on its own at the start time, one run per occurrence."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ksflow import clock
from tests.e2e.conftest import LocalStack
from tests.e2e.test_local_stack_sdk import WEBHOOK_SECRET, _client, _knowledge

pytestmark = pytest.mark.e2e


def _call(stack: LocalStack, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Plain HTTP: SDK 1.80.1 predates the schedule fields."""
    request = urllib.request.Request(
        stack.url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {stack.credentials['api_key']}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _scheduled_definition(stack: LocalStack, runner_url: str, start_at: datetime) -> dict[str, Any]:
    parts = _knowledge(_client(stack, stack.credentials["api_key"]), stack.credentials["root_path_part_id"])
    definition: dict[str, Any] = _call(stack, "POST", "/v1/workflow-definitions", {
        "name": "Nightly summary", "runner_type": "SELF_HOSTED",
        "runner_config": {"url": runner_url, "webhook_secret": WEBHOOK_SECRET},
        "source_path_part_ids": [str(parts["sources"].path_part_id)],
        "instruction_path_part_ids": [str(parts["instructions"].path_part_id)],
        "output_path_part_ids": [str(parts["outputs"].path_part_id)],
        "max_run_duration_seconds": 60,
        "schedule_cadence": "DAILY", "schedule_start_at": start_at.isoformat(), "schedule_timezone": "Europe/Berlin",
    })
    return definition


def _runs(stack: LocalStack, definition_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _call(stack, "GET", f"/v1/workflow-definitions/{definition_id}/runs")["items"]
    return items


def _await(condition: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.5)
    raise AssertionError(f"not met within {timeout} s")


def test_a_scheduled_definition_runs_on_its_own_at_its_start_time(local_stack: LocalStack,
                                                                  start_runner: Callable[..., str]) -> None:
    # The next whole minute at least five seconds ahead: Scheduler fires on the minute.
    start_at = (datetime.now(UTC) + timedelta(seconds=65)).replace(second=0, microsecond=0)
    definition = _scheduled_definition(local_stack, start_runner(WEBHOOK_SECRET), start_at)
    assert clock.parse(definition["next_run_at"]) == start_at
    assert _runs(local_stack, definition["id"]) == []

    wait = (start_at - datetime.now(UTC)).total_seconds() + 20
    [run] = _await(lambda: _runs(local_stack, definition["id"]), timeout=wait)
    assert run["trigger"] == "SCHEDULE"
    assert clock.parse(run["scheduled_for"]) == start_at
    assert datetime.now(UTC) >= start_at
    ended = _await(lambda: (r := _call(local_stack, "GET", f"/v1/workflow-runs/{run['id']}"))["status"]
                   in ("COMPLETED", "FAILED") and r, timeout=30)
    assert ended["status"] == "COMPLETED"
    later = _call(local_stack, "GET", f"/v1/workflow-definitions/{definition['id']}")
    assert clock.parse(later["next_run_at"]) == start_at + timedelta(days=1)
    assert later["last_schedule_error"] is None


def test_firing_one_occurrence_twice_makes_one_run(local_stack: LocalStack, start_runner: Callable[..., str]) -> None:
    start_at = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    definition = _scheduled_definition(local_stack, start_runner(WEBHOOK_SECRET), start_at)
    occurrence = "2030-03-31T07:30:00Z"

    first = local_stack.admin("fire-schedule", "--definition-id", definition["id"], "--at", occurrence)
    second = local_stack.admin("fire-schedule", "--definition-id", definition["id"], "--at", occurrence)
    assert first == second == {"definition_id": definition["id"], "scheduled_time": occurrence, "outcome": "started"}

    [run] = _runs(local_stack, definition["id"])
    assert run["trigger"] == "SCHEDULE"
    assert clock.parse(run["scheduled_for"]) == clock.parse(occurrence)
