"""The target of definitions' schedules: one run per occurrence, invoked as the definition's creator.

An occurrence that cannot run (a reference gone, the runner removed, the creator gone) is
recorded on the definition and counted (`ScheduleOccurrencesFailed`) instead of raised: a raise
would only make Scheduler retry it into the dead-letter queue. Unexpected errors do raise, so
Scheduler retries them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow import clock
from ksflow.errors import Conflict, NotFound
from ksflow.identity import store as identity
from ksflow.observability import logger, metrics, tracer
from ksflow.schedules import scheduler
from ksflow.schedules.models import ScheduleError, ScheduleOverlap, idempotency_key, scheduled_time
from ksflow.workflows import definitions, run_store, runs
from ksflow.workflows.models import WorkflowDefinition


class Outcome(StrEnum):
    STARTED = "started"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNSCHEDULED = "unscheduled"


def _previous_run_open(definition: WorkflowDefinition, occurrence: datetime) -> bool:
    """Whether the last scheduled run, made by an earlier occurrence, is still PENDING or RUNNING."""
    if definition.last_scheduled_run_id is None:
        return False
    previous = run_store.get(definition.last_scheduled_run_id)
    return previous is not None and not previous.status.terminal and previous.scheduled_for != occurrence


def _record_failure(definition: WorkflowDefinition, occurrence: datetime, error: str) -> Outcome:
    logger.warning("Scheduled occurrence made no run", extra={"error": error})
    definitions.record_schedule_error(definition.tenant_id, definition.id,
                                      ScheduleError(occurrence=occurrence, at=clock.now(), error=error))
    metrics.add_metric(name="ScheduleOccurrencesFailed", unit=MetricUnit.Count, value=1)
    return Outcome.FAILED


def fire(tenant_id: str, definition_id: str, occurrence: datetime) -> Outcome:
    definition = definitions.get(tenant_id, definition_id)
    if definition is None or definition.schedule is None:
        # Left behind by a delete or PUT whose schedule change failed: nothing should fire it again.
        logger.warning("Schedule of a deleted or unscheduled definition fired; removing it")
        scheduler.delete(definition_id)
        return Outcome.UNSCHEDULED
    if definition.schedule_overlap == ScheduleOverlap.SKIP and _previous_run_open(definition, occurrence):
        logger.info("Scheduled occurrence skipped: the previous scheduled run is still open",
                    extra={"previous_run_id": definition.last_scheduled_run_id})
        metrics.add_metric(name="ScheduleOccurrencesSkipped", unit=MetricUnit.Count, value=1)
        return Outcome.SKIPPED
    creator = identity.principal_of(tenant_id, definition.created_by)
    if creator is None:
        return _record_failure(definition, occurrence, "The workflow definition's creator no longer exists")
    try:
        run = runs.invoke(creator, definition_id, idempotency_key(occurrence), occurrence)
    except runs.IdempotencyKeyBusy:
        raise  # a concurrent delivery of this occurrence is creating the run; a retry finds it
    except NotFound:
        logger.info("Definition deleted while its occurrence fired")
        return Outcome.UNSCHEDULED
    except Conflict as error:
        return _record_failure(definition, occurrence, str(error.detail))
    logger.info("Scheduled occurrence invoked", extra={"run_id": run.id})
    return Outcome.STARTED


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    """Event: `{"tenant_id", "definition_id", "scheduled_time"}`, the occurrence as Scheduler gives it."""
    occurrence = scheduled_time(event["scheduled_time"])
    logger.append_keys(tenant_id=event["tenant_id"], workflow_definition_id=event["definition_id"],
                       scheduled_for=clock.iso(occurrence))
    return {"outcome": fire(event["tenant_id"], event["definition_id"], occurrence).value}
