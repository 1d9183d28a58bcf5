"""The local stack's scheduler emulator fires recurring schedules as EventBridge Scheduler would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ksflow.local.scheduler import LocalScheduler, recurrence_of
from ksflow.schedules.recurrence import Cadence, cron_expression
from ksflow.schedules.scheduler import SCHEDULED_TIME

GROUP = "ksflow-schedules"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:ksflow-ScheduleFire"


class RecordingLambda:
    """Keeps what the emulator invokes instead of running a function."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        assert (FunctionName, InvocationType) == (FUNCTION_ARN, "Event")
        self.events.append(json.loads(Payload))
        return {"StatusCode": 202}

    def scheduled_times(self) -> list[str]:
        return [event["scheduled_time"] for event in self.events]


@pytest.fixture
def scheduler_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("scheduler")
        client.create_schedule_group(Name=GROUP)
        yield client


def _schedule(client: Any, expression: str, timezone: str, start: datetime, state: str = "ENABLED") -> None:
    client.create_schedule(
        Name="definition-d1", GroupName=GROUP, ScheduleExpression=expression, ScheduleExpressionTimezone=timezone,
        StartDate=start, FlexibleTimeWindow={"Mode": "OFF"}, State=state,
        Target={"Arn": FUNCTION_ARN, "RoleArn": "arn:aws:iam::123456789012:role/target",
                "Input": json.dumps({"tenant_id": "t1", "definition_id": "d1", "scheduled_time": SCHEDULED_TIME})})


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_daily_schedule_fires_once_per_occurrence(scheduler_client: Any) -> None:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    _schedule(scheduler_client, "cron(0 9 * * ? *)", "UTC", start)
    lambda_client = RecordingLambda()
    emulator = LocalScheduler(scheduler_client, lambda_client, [GROUP])

    assert emulator.fire_due_schedules(start - timedelta(seconds=1)) == 0
    assert emulator.fire_due_schedules(start + timedelta(seconds=1)) == 1
    assert emulator.fire_due_schedules(start + timedelta(seconds=40)) == 0  # the same occurrence, once
    assert emulator.fire_due_schedules(start + timedelta(hours=23, minutes=59)) == 0
    assert emulator.fire_due_schedules(start + timedelta(days=1, seconds=2)) == 1
    # After a stop, missed occurrences are not made up: only the latest due one fires.
    assert emulator.fire_due_schedules(start + timedelta(days=4, hours=1)) == 1
    day = timedelta(days=1)
    assert lambda_client.scheduled_times() == [
        (start + n * day).strftime("%Y-%m-%dT%H:%M:%SZ") for n in (0, 1, 4)]
    assert lambda_client.events[0] == {"tenant_id": "t1", "definition_id": "d1",
                                       "scheduled_time": start.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_occurrences_before_the_start_date_do_not_fire(scheduler_client: Any) -> None:
    """The start date is max(start, now) on every change: the cron's earlier matches are not due."""
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    _schedule(scheduler_client, "cron(0 9 * * ? *)", "UTC", start)
    lambda_client = RecordingLambda()
    emulator = LocalScheduler(scheduler_client, lambda_client, [GROUP])
    assert emulator.fire_due_schedules(start + timedelta(hours=1)) == 0
    assert emulator.fire_due_schedules(start + timedelta(hours=21, seconds=1)) == 1
    assert lambda_client.scheduled_times() == [(start + timedelta(hours=21)).strftime("%Y-%m-%dT%H:%M:%SZ")]


def test_a_disabled_schedule_fires_nothing(scheduler_client: Any) -> None:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    _schedule(scheduler_client, "cron(0 9 * * ? *)", "UTC", start, state="DISABLED")
    lambda_client = RecordingLambda()
    emulator = LocalScheduler(scheduler_client, lambda_client, [GROUP])
    for days in range(3):
        assert emulator.fire_due_schedules(start + timedelta(days=days, seconds=1)) == 0
    assert lambda_client.events == []


def test_a_berlin_schedule_keeps_its_wall_time_across_spring_forward(scheduler_client: Any) -> None:
    """09:30 in Berlin is 08:30Z in winter (CET) and 07:30Z from 31 March 2030 on (CEST)."""
    _schedule(scheduler_client, "cron(30 9 * * ? *)", "Europe/Berlin", _at("2030-03-30T08:30:00"))
    lambda_client = RecordingLambda()
    emulator = LocalScheduler(scheduler_client, lambda_client, [GROUP])
    assert emulator.fire_due_schedules(_at("2030-03-30T08:30:05")) == 1
    assert emulator.fire_due_schedules(_at("2030-03-30T09:30:05")) == 0  # 10:30 in Berlin
    assert emulator.fire_due_schedules(_at("2030-03-31T07:29:59")) == 0
    assert emulator.fire_due_schedules(_at("2030-03-31T07:30:01")) == 1
    assert lambda_client.scheduled_times() == ["2030-03-30T08:30:00Z", "2030-03-31T07:30:00Z"]


def test_a_berlin_time_that_does_not_exist_that_day_is_skipped(scheduler_client: Any) -> None:
    """02:30 does not exist in Berlin on 31 March 2030 (02:00 jumps to 03:00): no run that day."""
    _schedule(scheduler_client, "cron(30 2 * * ? *)", "Europe/Berlin", _at("2030-03-30T01:30:00"))
    lambda_client = RecordingLambda()
    emulator = LocalScheduler(scheduler_client, lambda_client, [GROUP])
    for now in ("2030-03-30T01:30:01", "2030-03-31T00:30:01", "2030-03-31T01:30:01", "2030-03-31T23:59:00",
                "2030-04-01T00:30:01"):
        emulator.fire_due_schedules(_at(now))
    assert lambda_client.scheduled_times() == ["2030-03-30T01:30:00Z", "2030-04-01T00:30:00Z"]


@pytest.mark.parametrize(("cadence", "start_local"), [
    (Cadence.DAILY, datetime(2030, 3, 30, 2, 30)),
    (Cadence.WEEKLY, datetime(2030, 3, 27, 18, 5)),  # a Wednesday
    (Cadence.MONTHLY, datetime(2030, 2, 28, 0, 0)),
])
def test_the_emulator_reads_back_every_expression_the_adapter_writes(cadence: Cadence,
                                                                     start_local: datetime) -> None:
    expression = cron_expression(cadence, start_local)
    rule = recurrence_of(expression, "America/New_York", _at("2030-06-15T12:00:00"))
    assert rule is not None
    assert rule[0] is cadence and cron_expression(*rule) == expression
    assert recurrence_of("cron(0 9 1-5 * ? *)", "UTC", _at("2030-06-15T12:00:00")) is None
