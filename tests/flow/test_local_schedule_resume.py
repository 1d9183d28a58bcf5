"""A persistent local stack gives scheduled definitions their schedule back at start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3

from ksflow.identity.models import CreatedTenant
from ksflow.local import resume
from ksflow.schedules.scheduler import schedule_name
from tests.conftest import call_api, definition_body


def test_restart_recreates_the_schedules_of_scheduled_definitions(aws_env: dict[str, str], tenant: CreatedTenant,
                                                                   knowledge: dict[str, str]) -> None:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    scheduled = call_api("POST", "/v1/workflow-definitions", definition_body(
        knowledge, "http://127.0.0.1:9/", schedule_cadence="WEEKLY", schedule_start_at=start.isoformat(),
        schedule_timezone="America/New_York"), tenant.api_key).body
    call_api("POST", "/v1/workflow-definitions", definition_body(knowledge, "http://127.0.0.1:9/", name="Manual"),
             tenant.api_key)
    client, group = boto3.client("scheduler"), aws_env["SCHEDULE_GROUP_NAME"]
    before = client.get_schedule(Name=schedule_name(scheduled["id"]), GroupName=group)
    client.delete_schedule(Name=schedule_name(scheduled["id"]), GroupName=group)  # what a restarted moto has

    assert resume.resume_open_work().schedules == [scheduled["id"]]
    after = client.get_schedule(Name=schedule_name(scheduled["id"]), GroupName=group)
    assert (after["ScheduleExpression"], after["ScheduleExpressionTimezone"], after["State"], after["Target"]) == (
        before["ScheduleExpression"], "America/New_York", "ENABLED", before["Target"])
