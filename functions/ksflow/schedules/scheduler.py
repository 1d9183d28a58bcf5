"""EventBridge Scheduler calls for the one recurring schedule each scheduled definition has."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ksflow import aws, clock
from ksflow.config import settings
from ksflow.schedules.models import Schedule

# Scheduler fills this in with the occurrence each event is for.
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
# A delivery still failing after this long goes to the dead-letter queue; the next occurrence comes a day later.
_RETRY_POLICY = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20}


class ScheduleRefused(Exception):
    """Scheduler rejected the schedule (for example a time zone it does not know)."""


def schedule_name(definition_id: str) -> str:
    return f"definition-{definition_id}"


def _client() -> Any:
    return aws.client("scheduler")


def put(tenant_id: str, definition_id: str, schedule: Schedule, *, enabled: bool) -> None:
    """Create the definition's schedule, or replace the one it has.

    The start date is never in the past: Scheduler refuses one more than five minutes ago, and
    the recurrence, not the start date, decides the wall time it fires at.
    """
    config = settings()
    target: dict[str, Any] = {
        "Arn": config.schedule_function_arn, "RoleArn": config.schedule_role_arn, "RetryPolicy": _RETRY_POLICY,
        "Input": json.dumps({"tenant_id": tenant_id, "definition_id": definition_id,
                             "scheduled_time": SCHEDULED_TIME}),
    }
    if config.schedule_dlq_arn:
        target["DeadLetterConfig"] = {"Arn": config.schedule_dlq_arn}
    request = {
        "Name": schedule_name(definition_id), "GroupName": config.schedule_group_name,
        "ScheduleExpression": schedule.cron(), "ScheduleExpressionTimezone": schedule.timezone,
        "StartDate": max(schedule.start_at, clock.now()), "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED" if enabled else "DISABLED", "Target": target,
    }
    try:
        try:
            _client().create_schedule(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConflictException":
                raise
            _client().update_schedule(**request)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationException":
            raise ScheduleRefused(error.response["Error"].get("Message", "")) from error
        raise


def delete(definition_id: str) -> None:
    """Remove the definition's schedule; one already gone is fine."""
    try:
        _client().delete_schedule(Name=schedule_name(definition_id), GroupName=settings().schedule_group_name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
