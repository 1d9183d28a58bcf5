"""Scheduled definitions: the fields, the Scheduler schedule kept with each definition, and its occurrences."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from ksapi.models import WorkflowDefinitionResponse, WorkflowRunResponse

from ksflow import clock
from ksflow.identity.models import CreatedTenant
from ksflow.local.lambda_runtime import LocalContext
from ksflow.schedules import fire, scheduler
from ksflow.workflows import definitions
from tests.conftest import Runner, call_api, definition_body, wait_for
from tests.unit.conftest import PUBLIC_RUNNER_URL, callback, get_run

SCHEDULED = {"schedule_cadence": "DAILY", "schedule_start_at": "2030-03-09T02:30:00",
             "schedule_timezone": "America/New_York"}


def create(body: dict[str, Any], api_key: str) -> Any:
    return call_api("POST", "/v1/workflow-definitions", body, api_key)


def put(definition_id: str, body: dict[str, Any], api_key: str) -> Any:
    return call_api("PUT", f"/v1/workflow-definitions/{definition_id}", body, api_key)


def stored_schedule(definition_id: str) -> dict[str, Any] | None:
    try:
        return dict(boto3.client("scheduler").get_schedule(Name=scheduler.schedule_name(definition_id),
                                                           GroupName="ksflow-schedules"))
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        return None


def armed_schedule(definition_id: str) -> dict[str, Any]:
    schedule = stored_schedule(definition_id)
    assert schedule is not None, f"definition {definition_id} has no schedule"
    return schedule


def schedule_count() -> int:
    return len(boto3.client("scheduler").list_schedules(GroupName="ksflow-schedules")["Schedules"])


def definition_count(api_key: str) -> int:
    return int(call_api("GET", "/v1/workflow-definitions", api_key=api_key).body["total"])


def fire_occurrence(tenant_id: str, definition_id: str, occurrence: datetime) -> str:
    event = {"tenant_id": tenant_id, "definition_id": definition_id,
             "scheduled_time": occurrence.strftime("%Y-%m-%dT%H:%M:%SZ")}
    result = fire.lambda_handler(event, LocalContext(function_name="ksflow-ScheduleFire", timeout_seconds=30))
    return str(result["outcome"])


def runs_of(definition_id: str, api_key: str) -> list[dict[str, Any]]:
    response = call_api("GET", f"/v1/workflow-definitions/{definition_id}/runs", api_key=api_key)
    assert response.status == 200, response.body
    return list(response.body["items"])


def assert_422_at(response: Any, loc: list[Any]) -> None:
    assert response.status == 422, response.body
    assert any(entry["loc"] == loc for entry in response.body["detail"]), response.body


@pytest.fixture
def finish_open_runs(tenant: CreatedTenant) -> Iterator[list[str]]:
    """Run ids whose runner never calls back; ended at teardown so their executions finish."""
    run_ids: list[str] = []
    yield run_ids
    for run_id in run_ids:
        if get_run(run_id, tenant.api_key)["status"] in ("PENDING", "RUNNING"):
            callback(run_id, {"status": "COMPLETED"})


# --- fields and validation -----------------------------------------------------------------------------------


def test_a_scheduled_definition_has_one_recurring_schedule(aws_env: dict[str, str], tenant: CreatedTenant,
                                                          knowledge: dict[str, str]) -> None:
    response = create(definition_body(knowledge, PUBLIC_RUNNER_URL, **SCHEDULED), tenant.api_key)
    assert response.status == 201, response.body
    body = response.body
    # 02:30 EST is 07:30 UTC; the next day has no 02:30 in New York, so the first run after it is on the 11th.
    assert body["schedule_start_at"].startswith("2030-03-09T07:30:00")
    assert (body["schedule_cadence"], body["schedule_timezone"], body["schedule_overlap"]) == (
        "DAILY", "America/New_York", "SKIP")
    assert body["next_run_at"].startswith("2030-03-09T07:30:00") and body["last_schedule_error"] is None
    assert WorkflowDefinitionResponse.from_dict(body) is not None

    schedule = armed_schedule(body["id"])
    assert schedule["ScheduleExpression"] == "cron(30 2 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "America/New_York" and schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == aws_env["SCHEDULE_FUNCTION_ARN"] and target["RoleArn"] == aws_env["SCHEDULE_ROLE_ARN"]
    assert target["DeadLetterConfig"]["Arn"] == aws_env["SCHEDULE_DLQ_ARN"] and target["RetryPolicy"]
    assert json.loads(target["Input"]) == {"tenant_id": tenant.tenant_id, "definition_id": body["id"],
                                           "scheduled_time": "<aws.scheduler.scheduled-time>"}


def test_next_run_at_skips_a_time_that_does_not_exist(tenant: CreatedTenant, knowledge: dict[str, str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    definition = create(definition_body(knowledge, PUBLIC_RUNNER_URL, **SCHEDULED), tenant.api_key).body
    monkeypatch.setattr(clock, "now", lambda: datetime(2030, 3, 9, 12, 0, tzinfo=UTC))
    got = call_api("GET", f"/v1/workflow-definitions/{definition['id']}", api_key=tenant.api_key).body
    assert got["next_run_at"].startswith("2030-03-11T06:30:00")


def test_an_unscheduled_definition_has_no_schedule(tenant: CreatedTenant, knowledge: dict[str, str]) -> None:
    body = create(definition_body(knowledge, PUBLIC_RUNNER_URL, schedule_timezone="Europe/Berlin"),
                  tenant.api_key).body
    unset = ("schedule_cadence", "schedule_start_at", "schedule_timezone", "next_run_at", "last_schedule_error")
    assert [body[field] for field in unset] == [None] * len(unset) and body["schedule_overlap"] == "SKIP"
    assert stored_schedule(body["id"]) is None


def test_start_is_truncated_to_the_minute_and_the_zone_defaults_to_utc(tenant: CreatedTenant,
                                                                       knowledge: dict[str, str]) -> None:
    body = create(definition_body(knowledge, PUBLIC_RUNNER_URL, schedule_cadence="WEEKLY",
                                  schedule_start_at="2030-01-15T08:45:59.999+01:00"), tenant.api_key).body
    assert body["schedule_start_at"].startswith("2030-01-15T07:45:00") and body["schedule_timezone"] == "UTC"
    assert armed_schedule(body["id"])["ScheduleExpression"] == "cron(45 7 ? * TUE *)"


@pytest.mark.parametrize(("fields", "loc"), [
    ({"schedule_cadence": "MONTHLY", "schedule_start_at": "2030-01-29T09:00:00"}, ["body", "schedule_start_at"]),
    ({"schedule_cadence": "DAILY"}, ["body", "schedule_start_at"]),
    ({"schedule_start_at": "2030-01-15T09:00:00"}, ["body", "schedule_cadence"]),
    ({**SCHEDULED, "schedule_timezone": "Mars/Olympus_Mons"}, ["body", "schedule_timezone"]),
    ({**SCHEDULED, "schedule_timezone": "+02:00"}, ["body", "schedule_timezone"]),
    ({**SCHEDULED, "schedule_timezone": "localtime"}, ["body", "schedule_timezone"]),
    ({**SCHEDULED, "schedule_timezone": "A" * 65}, ["body", "schedule_timezone"]),
    ({**SCHEDULED, "schedule_cadence": "HOURLY"}, ["body", "schedule_cadence"]),
    ({**SCHEDULED, "schedule_overlap": "QUEUE"}, ["body", "schedule_overlap"]),
    ({**SCHEDULED, "schedule_start_at": "2030-03-10T02:30:00"}, ["body", "schedule_start_at"]),  # DST gap
])
def test_invalid_schedules_are_422_and_leave_nothing(tenant: CreatedTenant, knowledge: dict[str, str],
                                                     fields: dict[str, Any], loc: list[str]) -> None:
    assert_422_at(create(definition_body(knowledge, PUBLIC_RUNNER_URL, **fields), tenant.api_key), loc)
    assert definition_count(tenant.api_key) == 0 and schedule_count() == 0


# --- the schedule follows the definition ---------------------------------------------------------------------


def test_put_changes_disables_reenables_and_removes_the_schedule(tenant: CreatedTenant,
                                                                 knowledge: dict[str, str]) -> None:
    definition = create(definition_body(knowledge, PUBLIC_RUNNER_URL, **SCHEDULED), tenant.api_key).body
    weekly = definition_body(knowledge, PUBLIC_RUNNER_URL, schedule_cadence="WEEKLY",
                             schedule_start_at="2020-06-03T18:05:00", schedule_timezone="Europe/Berlin",
                             schedule_overlap="ALLOW")
    response = put(definition["id"], weekly, tenant.api_key)
    assert response.status == 200, response.body
    schedule = armed_schedule(definition["id"])
    assert schedule["ScheduleExpression"] == "cron(5 18 ? * WED *)"
    assert schedule["StartDate"] >= datetime.now(UTC) - timedelta(minutes=1)  # a past start is armed from now
    assert response.body["next_run_at"] is not None and response.body["schedule_overlap"] == "ALLOW"

    inactive = put(definition["id"], {**weekly, "is_active": False}, tenant.api_key)
    assert inactive.body["next_run_at"] is None
    assert armed_schedule(definition["id"])["State"] == "DISABLED"
    put(definition["id"], weekly, tenant.api_key)
    assert armed_schedule(definition["id"])["State"] == "ENABLED"

    unscheduled = put(definition["id"], definition_body(knowledge, PUBLIC_RUNNER_URL), tenant.api_key)
    assert unscheduled.status == 200 and unscheduled.body["schedule_cadence"] is None
    assert stored_schedule(definition["id"]) is None


def test_deleting_the_definition_deletes_its_schedule(tenant: CreatedTenant, knowledge: dict[str, str]) -> None:
    definition = create(definition_body(knowledge, PUBLIC_RUNNER_URL, **SCHEDULED), tenant.api_key).body
    assert call_api("DELETE", f"/v1/workflow-definitions/{definition['id']}", api_key=tenant.api_key).status == 204
    assert schedule_count() == 0


class _FailingWrites:
    """The definitions table, except that item writes fail as a throttled or broken table would."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def _fail(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "PutItem")

    put_item = update_item = _fail


def test_a_failed_create_leaves_no_schedule(tenant: CreatedTenant, knowledge: dict[str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = definitions._table
    monkeypatch.setattr(definitions, "_table", lambda: _FailingWrites(real()))
    assert create(definition_body(knowledge, PUBLIC_RUNNER_URL, **SCHEDULED), tenant.api_key).status == 500
    assert schedule_count() == 0


def test_a_failed_put_restores_the_previous_schedule(tenant: CreatedTenant, knowledge: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    definition = create(definition_body(knowledge, PUBLIC_RUNNER_URL, **SCHEDULED), tenant.api_key).body
    real = definitions._table
    monkeypatch.setattr(definitions, "_table", lambda: _FailingWrites(real()))
    monthly = definition_body(knowledge, PUBLIC_RUNNER_URL, schedule_cadence="MONTHLY",
                              schedule_start_at="2030-02-28T23:00:00")
    assert put(definition["id"], monthly, tenant.api_key).status == 500
    assert armed_schedule(definition["id"])["ScheduleExpression"] == "cron(30 2 * * ? *)"
    unscheduled = definition_body(knowledge, PUBLIC_RUNNER_URL)
    assert put(definition["id"], unscheduled, tenant.api_key).status == 500
    assert stored_schedule(definition["id"]) is not None


class _RefusingScheduler:
    """Scheduler refusing every schedule, as it does a zone it does not know."""

    def create_schedule(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "Invalid timezone"}}, "CreateSchedule")

    update_schedule = create_schedule


def test_a_zone_scheduler_refuses_is_422_and_changes_nothing(tenant: CreatedTenant, knowledge: dict[str, str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    existing = create(definition_body(knowledge, PUBLIC_RUNNER_URL), tenant.api_key).body
    monkeypatch.setattr(scheduler, "_client", _RefusingScheduler)
    body = definition_body(knowledge, PUBLIC_RUNNER_URL, **SCHEDULED)
    assert_422_at(create(body, tenant.api_key), ["body", "schedule_timezone"])
    assert_422_at(put(existing["id"], body, tenant.api_key), ["body", "schedule_timezone"])
    assert definition_count(tenant.api_key) == 1
    got = call_api("GET", f"/v1/workflow-definitions/{existing['id']}", api_key=tenant.api_key).body
    assert got["schedule_cadence"] is None


# --- occurrences ---------------------------------------------------------------------------------------------


OCCURRENCE = datetime(2030, 3, 9, 7, 30, tzinfo=UTC)


def test_an_occurrence_fired_twice_makes_one_scheduled_run(api_server: str, tenant: CreatedTenant,
                                                           runner_factory: Callable[..., Runner],
                                                           create_definition: Callable[..., dict[str, Any]]) -> None:
    definition = create_definition(runner_factory(delay=0.05).url, **SCHEDULED)
    assert fire_occurrence(tenant.tenant_id, definition["id"], OCCURRENCE) == "started"
    assert fire_occurrence(tenant.tenant_id, definition["id"], OCCURRENCE) == "started"
    runs = runs_of(definition["id"], tenant.api_key)
    assert len(runs) == 1
    run = runs[0]
    assert run["trigger"] == "SCHEDULE" and run["scheduled_for"].startswith("2030-03-09T07:30:00")
    assert run["invoked_by"] == run["user_id"] == definition_owner(tenant)
    assert WorkflowRunResponse.from_dict(run) is not None
    wait_for(lambda: get_run(run["id"], tenant.api_key)["status"] == "COMPLETED")

    manual = call_api("POST", f"/v1/workflow-definitions/{definition['id']}/invoke", {}, tenant.api_key).body
    assert manual["trigger"] == "MANUAL" and manual["scheduled_for"] is None
    wait_for(lambda: get_run(manual["id"], tenant.api_key)["status"] == "COMPLETED")


def definition_owner(tenant: CreatedTenant) -> str:
    return str(call_api("GET", "/v1/users/me", api_key=tenant.api_key).body["id"])


@pytest.mark.parametrize(("overlap", "runs_expected"), [("SKIP", 1), ("ALLOW", 2)])
def test_overlap_while_the_previous_scheduled_run_is_open(api_server: str, tenant: CreatedTenant,
                                                          runner_factory: Callable[..., Runner],
                                                          create_definition: Callable[..., dict[str, Any]],
                                                          finish_open_runs: list[str], overlap: str,
                                                          runs_expected: int) -> None:
    definition = create_definition(runner_factory(delay=3600).url, schedule_overlap=overlap, **SCHEDULED)
    fire_occurrence(tenant.tenant_id, definition["id"], OCCURRENCE)
    finish_open_runs.extend(run["id"] for run in runs_of(definition["id"], tenant.api_key))
    outcome = fire_occurrence(tenant.tenant_id, definition["id"], OCCURRENCE + timedelta(days=1))
    finish_open_runs.extend(run["id"] for run in runs_of(definition["id"], tenant.api_key))
    assert outcome == ("skipped" if overlap == "SKIP" else "started")
    assert len(runs_of(definition["id"], tenant.api_key)) == runs_expected


def test_an_occurrence_that_cannot_run_is_recorded_until_one_runs(api_server: str, tenant: CreatedTenant,
                                                                  knowledge: dict[str, str],
                                                                  runner_factory: Callable[..., Runner]) -> None:
    body = definition_body(knowledge, PUBLIC_RUNNER_URL, runner_config=None, **SCHEDULED)
    definition = create(body, tenant.api_key).body
    assert fire_occurrence(tenant.tenant_id, definition["id"], OCCURRENCE) == "failed"
    got = call_api("GET", f"/v1/workflow-definitions/{definition['id']}", api_key=tenant.api_key).body
    error = got["last_schedule_error"]
    assert error["occurrence"].startswith("2030-03-09T07:30:00") and "runner" in error["error"] and error["at"]
    assert runs_of(definition["id"], tenant.api_key) == []

    fixed = put(definition["id"], definition_body(knowledge, runner_factory(delay=0.05).url, **SCHEDULED),
                tenant.api_key)
    assert fixed.body["last_schedule_error"] == error  # a PUT keeps the occurrence history
    assert fire_occurrence(tenant.tenant_id, definition["id"], OCCURRENCE + timedelta(days=1)) == "started"
    got = call_api("GET", f"/v1/workflow-definitions/{definition['id']}", api_key=tenant.api_key).body
    assert got["last_schedule_error"] is None
    run = runs_of(definition["id"], tenant.api_key)[0]
    wait_for(lambda: get_run(run["id"], tenant.api_key)["status"] == "COMPLETED")


def test_a_schedule_whose_definition_is_gone_removes_itself(tenant: CreatedTenant, knowledge: dict[str, str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    definition = create(definition_body(knowledge, PUBLIC_RUNNER_URL, **SCHEDULED), tenant.api_key).body
    def scheduler_down(definition_id: str) -> None:
        raise ClientError({"Error": {"Code": "InternalServerException", "Message": "down"}}, "DeleteSchedule")

    with monkeypatch.context() as patched:
        patched.setattr(scheduler, "delete", scheduler_down)
        assert call_api("DELETE", f"/v1/workflow-definitions/{definition['id']}", api_key=tenant.api_key).status == 204
    assert schedule_count() == 1
    assert fire_occurrence(tenant.tenant_id, definition["id"], OCCURRENCE) == "unscheduled"
    assert schedule_count() == 0
