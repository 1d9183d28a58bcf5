"""Runs and ingestions that were open when a persistent local stack stopped, taken up again at start.

A restarted moto has no executions and no schedules, so nothing would ever end such work.
A run with time left is dispatched again at its current attempt: it goes back to PENDING
without its stale task token, the execution of that attempt is started afresh (the new moto
has none by that name; a run waiting out a retry's backoff is dispatched at once) and the
attempt's expiry schedule is recreated. A run whose deadline passed is failed with the
reason. An open ingestion's execution is started again; its tasks take over the record
because they belong to the same execution name. Scheduled definitions get their schedule
back (from now on: occurrences missed while stopped are not made up, as in Scheduler). A
background deletion starts again from the top of each subtree still being deleted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from ksflow import aws, clock
from ksflow.config import settings
from ksflow.deletion import executions as deletion_executions
from ksflow.ingestion import executions as ingestion_executions
from ksflow.ingestion.models import OPEN_STATUSES as OPEN_INGESTION_STATUSES
from ksflow.ingestion.models import Ingestion
from ksflow.knowledge.models import PathPart
from ksflow.orchestration import executions
from ksflow.schedules import scheduler
from ksflow.schedules.recurrence import Cadence
from ksflow.workflows import run_store
from ksflow.workflows.models import EndedBy, RunStatus, WorkflowDefinition, WorkflowRun

DEADLINE_PASSED = "The local stack stopped while the run was open and its deadline passed"


@dataclass
class Resumed:
    redispatched: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    ingestions: list[str] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.redispatched or self.failed or self.ingestions or self.schedules or self.deletions)


def _open_items() -> list[dict[str, Any]]:
    """Open runs and ingestions, scheduled definitions, and path parts being deleted."""
    statuses = [*run_store.OPEN_STATUSES, *(status.value for status in OPEN_INGESTION_STATUSES)]
    query: dict[str, Any] = {"FilterExpression": Attr("status").is_in(statuses)
                             | Attr("schedule_cadence").is_in([cadence.value for cadence in Cadence])
                             | Attr("deleting").exists(),
                             "ConsistentRead": True}
    items: list[dict[str, Any]] = []
    while True:
        page = aws.table(settings().table_name).scan(**query)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _back_to_pending(run: WorkflowRun) -> bool:
    """PENDING again without the task token of the execution that died; False if its attempt ended meanwhile."""
    try:
        aws.table(settings().table_name).update_item(
            Key=run_store.run_key(run.id),
            UpdateExpression="SET #status = :pending, updated_at = :now REMOVE task_token",
            ConditionExpression=("#status IN (:pending, :running) "
                                 "AND (attempt = :attempt OR attribute_not_exists(attempt))"),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":pending": RunStatus.PENDING.value, ":running": RunStatus.RUNNING.value,
                                       ":now": clock.iso(clock.now()), ":attempt": run.attempt})
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _resume_run(run: WorkflowRun, now: datetime, resumed: Resumed) -> None:
    if math.ceil((run.deadline - now).total_seconds()) < 1:
        ended = run_store.end_attempt(run, run_store.Ending(RunStatus.FAILED, DEADLINE_PASSED, EndedBy.RECONCILE))
        if ended is not None:
            resumed.failed.append(run.id)
        return
    if _back_to_pending(run):
        executions.start(run.model_copy(update={"task_token": None}), now)
        executions.schedule_expiry(run.id, run.attempt, executions.expiry_time(run.deadline))
        resumed.redispatched.append(run.id)


def resume_open_work() -> Resumed:
    resumed = Resumed()
    now = clock.now()
    items = _open_items()
    deleting = {item["path_part_id"] for item in items if item["sk"].startswith("PATHPART#")}
    for item in items:
        if item["sk"].startswith("PATHPART#"):
            if item["parent_id"] not in deleting:
                deletion_executions.start(PathPart.model_validate(item))
                resumed.deletions.append(item["path_part_id"])
        elif item["sk"] == "RUN":
            _resume_run(WorkflowRun.model_validate(item), now, resumed)
        elif item["sk"].startswith("INGESTION#"):
            ingestion = Ingestion.model_validate(item)
            ingestion_executions.start(ingestion)
            resumed.ingestions.append(ingestion.workflow_id)
        elif item["sk"].startswith("WORKFLOWDEF#"):
            definition = WorkflowDefinition.model_validate(item)
            if definition.schedule is not None:
                scheduler.put(definition.tenant_id, definition.id, definition.schedule, enabled=definition.is_active)
                resumed.schedules.append(definition.id)
    return resumed
