"""Fires EventBridge Scheduler schedules, which moto stores but never runs.

Uses only the public Scheduler and Lambda APIs against moto, so schedules behave as in AWS:
the target function gets the schedule's input, `ActionAfterCompletion=DELETE` removes a
one-off `at(...)` schedule, and a DISABLED schedule fires nothing. Recurring `cron(...)`
schedules fire on the wall clock in their `ScheduleExpressionTimezone`, from their
`StartDate` on, each occurrence once; the occurrences come from `recurrence`, the code that
wrote the cron expression, so the emulator and `next_run_at` cannot disagree.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from ksflow.observability import logger
from ksflow.schedules import recurrence
from ksflow.schedules.recurrence import Cadence
from ksflow.schedules.scheduler import SCHEDULED_TIME

_AT = re.compile(r"^at\((?P<moment>[0-9T:-]+)\)$")
# The three shapes recurrence.Recurrence.cron writes: daily, weekly on a weekday, monthly on a day.
_CRON = re.compile(r"^cron\((?P<minute>\d+) (?P<hour>\d+) (?P<day>\d+|\*|\?) \* (?P<weekday>[A-Z]{3}|\?) \*\)$")
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def due(expression: str, now: datetime) -> bool:
    match = _AT.match(expression)
    if not match:
        return False
    return datetime.fromisoformat(match["moment"]).replace(tzinfo=UTC) <= now


def scheduled_time(occurrence: datetime) -> str:
    """The occurrence as Scheduler writes `<aws.scheduler.scheduled-time>`."""
    return occurrence.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TargetFailed(Exception):
    """The target function raised; the message is its error payload."""


def fire(lambda_client: Any, target: dict[str, Any], occurrence: datetime, *, wait: bool = False) -> Any:
    """Invoke the target with its input for `occurrence`, asynchronously as Scheduler does.

    `wait` invokes synchronously instead and returns the function's result (TargetFailed if it raised).
    """
    payload = target.get("Input", "{}").replace(SCHEDULED_TIME, scheduled_time(occurrence))
    response = lambda_client.invoke(FunctionName=target["Arn"], InvocationType="RequestResponse" if wait else "Event",
                                    Payload=payload.encode())
    if not wait:
        return None
    result = json.loads(response["Payload"].read() or "null")
    if "FunctionError" in response:
        raise TargetFailed(json.dumps(result))
    return result


def _matching_day(on_or_before: date, cadence: Cadence, weekday: int | None, day_of_month: int | None) -> date:
    day = on_or_before
    while (cadence is Cadence.WEEKLY and day.weekday() != weekday) or (
            cadence is Cadence.MONTHLY and day.day != day_of_month):
        day -= timedelta(days=1)
    return day


def recurrence_of(expression: str, timezone: str, start: datetime) -> tuple[Cadence, datetime] | None:
    """A cadence and a first occurrence (wall time) before `start` that write exactly this cron expression.

    None for an expression ksflow does not write. The start is moved before `start` only to give
    `next_occurrence` a first occurrence; the schedule's StartDate still bounds what fires.
    """
    match = _CRON.match(expression)
    if not match:
        return None
    weekday = _WEEKDAYS.index(match["weekday"]) if match["weekday"] in _WEEKDAYS else None
    day_of_month = int(match["day"]) if match["day"].isdigit() else None
    cadence = Cadence.WEEKLY if weekday is not None else Cadence.MONTHLY if day_of_month else Cadence.DAILY
    local_day = start.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)
    first = datetime.combine(_matching_day(local_day, cadence, weekday, day_of_month),
                             time(int(match["hour"]), int(match["minute"])))
    try:
        if recurrence.cron_expression(cadence, first) != expression:
            return None
    except ValueError:
        return None
    return cadence, first


def latest_due_occurrence(schedule: dict[str, Any], last_fired: datetime | None, now: datetime) -> datetime | None:
    """The latest occurrence at or before `now`, not before StartDate and after `last_fired`; None if none.

    Occurrences missed while the stack was stopped are not made up, as Scheduler does not backfill.
    """
    start = schedule.get("StartDate") or schedule["CreationDate"]
    timezone = schedule.get("ScheduleExpressionTimezone") or "UTC"
    rule = recurrence_of(schedule["ScheduleExpression"], timezone, start)
    if rule is None:
        return None
    cadence, first = rule
    not_before = start - timedelta(microseconds=1)  # next_occurrence is strictly after its `after`
    after = not_before if last_fired is None else max(not_before, last_fired)
    occurrence = recurrence.next_occurrence(cadence, first, timezone, after)
    if occurrence > now:
        return None
    while (following := recurrence.next_occurrence(cadence, first, timezone, occurrence)) <= now:
        occurrence = following
    return occurrence


class LocalScheduler:
    """Fires due schedules of the given groups; remembers each recurring schedule's last fired occurrence."""

    def __init__(self, scheduler: Any, lambda_client: Any, groups: Sequence[str]) -> None:
        self._scheduler, self._lambda, self._groups = scheduler, lambda_client, groups
        self._last_fired: dict[tuple[str, str], datetime] = {}

    def fire_due_schedules(self, now: datetime) -> int:
        return sum(self._fire_due(group, now) for group in self._groups)

    def _fire_due(self, group: str, now: datetime) -> int:
        fired = 0
        names = [s["Name"] for page in self._scheduler.get_paginator("list_schedules").paginate(GroupName=group)
                 for s in page["Schedules"]]
        for name in names:
            try:
                schedule = self._scheduler.get_schedule(Name=name, GroupName=group)
            except ClientError:
                continue  # deleted meanwhile
            if schedule.get("State") == "DISABLED":
                continue
            if schedule["ScheduleExpression"].startswith("cron("):
                occurrence = latest_due_occurrence(schedule, self._last_fired.get((group, name)), now)
                if occurrence is None:
                    continue
                self._last_fired[(group, name)] = occurrence
                fire(self._lambda, schedule["Target"], occurrence)
                fired += 1
            elif due(schedule["ScheduleExpression"], now):
                fire(self._lambda, schedule["Target"], now)
                fired += 1
                if schedule.get("ActionAfterCompletion") == "DELETE":
                    with contextlib.suppress(ClientError):
                        self._scheduler.delete_schedule(Name=name, GroupName=group)
        return fired


def start(scheduler: Any, lambda_client: Any, groups: Sequence[str], stop: threading.Event,
          interval: float = 1.0) -> threading.Thread:
    local_scheduler = LocalScheduler(scheduler, lambda_client, groups)

    def loop() -> None:
        while not stop.wait(interval):
            try:
                local_scheduler.fire_due_schedules(datetime.now(UTC))
            except Exception:
                logger.exception("Local scheduler tick failed")

    thread = threading.Thread(target=loop, name="local-scheduler", daemon=True)
    thread.start()
    return thread
