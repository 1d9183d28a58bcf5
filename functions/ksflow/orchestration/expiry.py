"""The per-attempt expiry schedule's target: whatever crashed, no attempt stays open past its deadline."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow import clock
from ksflow.lifecycle import attempts
from ksflow.observability import follow_run, logger, metrics, tracer
from ksflow.orchestration import executions
from ksflow.workflows import run_store
from ksflow.workflows.models import EndedBy, RunStatus, WorkflowRun


def expire(run_id: str) -> bool:
    run = run_store.get(run_id)
    if run is None or run.status.terminal or run.deadline > clock.now():
        return False
    follow_run(run)
    message = attempts.time_limit_error(run.max_run_duration_seconds, " and was expired")

    def decide(latest: WorkflowRun) -> run_store.Ending | None:
        if latest.deadline > clock.now():
            return None
        return run_store.Ending(RunStatus.FAILED, message, EndedBy.EXPIRY)

    ended = attempts.end_latest(run_id, decide)
    if ended is None:
        return False
    logger.warning("Run expired by its schedule", extra={"status_before": run.status.value})
    executions.stop(ended.execution_name, message)
    return True


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, bool]:
    return {"expired": expire(event["run_id"])}
