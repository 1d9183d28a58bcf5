"""Fires due one-off EventBridge Scheduler schedules, which moto stores but never runs.

Uses only the public Scheduler and Lambda APIs against moto, so schedules behave as in AWS:
the target function gets the schedule's input, and `ActionAfterCompletion=DELETE` removes it.
"""

from __future__ import annotations

import contextlib
import re
import threading
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ksflow.observability import logger

_AT = re.compile(r"^at\((?P<moment>[0-9T:-]+)\)$")


def due(expression: str, now: datetime) -> bool:
    match = _AT.match(expression)
    if not match:
        return False
    return datetime.fromisoformat(match["moment"]).replace(tzinfo=UTC) <= now


def fire_due_schedules(scheduler: Any, lambda_client: Any, group: str, now: datetime) -> int:
    fired = 0
    names = [s["Name"] for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group)
             for s in page["Schedules"]]
    for name in names:
        try:
            schedule = scheduler.get_schedule(Name=name, GroupName=group)
        except ClientError:
            continue  # deleted meanwhile
        if not due(schedule["ScheduleExpression"], now):
            continue
        target = schedule["Target"]
        lambda_client.invoke(FunctionName=target["Arn"], InvocationType="Event",
                             Payload=target.get("Input", "{}").encode())
        fired += 1
        if schedule.get("ActionAfterCompletion") == "DELETE":
            with contextlib.suppress(ClientError):
                scheduler.delete_schedule(Name=name, GroupName=group)
    return fired


def start(scheduler: Any, lambda_client: Any, group: str, stop: threading.Event,
          interval: float = 1.0) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(interval):
            try:
                fire_due_schedules(scheduler, lambda_client, group, datetime.now(UTC))
            except Exception:
                logger.exception("Local scheduler tick failed")

    thread = threading.Thread(target=loop, name="local-scheduler", daemon=True)
    thread.start()
    return thread
