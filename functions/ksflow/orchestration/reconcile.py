"""Execution status changes (FAILED, TIMED_OUT, ABORTED) fail runs whose current execution died.

An execution that no longer runs its run's attempt (a retry by hand started another) is left be.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.lifecycle import attempts
from ksflow.observability import logger, metrics, tracer
from ksflow.orchestration import executions
from ksflow.workflows import run_store
from ksflow.workflows.models import EndedBy, RunStatus, WorkflowRun, run_id_of_execution


def reconcile(detail: dict[str, Any]) -> bool:
    name, status = str(detail.get("name", "")), str(detail.get("status", ""))
    run_id = run_id_of_execution(name)
    if run_id is None:
        return False
    message = f"Run orchestration ended unexpectedly (execution {status})"

    def decide(run: WorkflowRun) -> run_store.Ending | None:
        if run.execution_name != name:
            return None
        return run_store.Ending(RunStatus.FAILED, message, EndedBy.RECONCILE)

    ended = attempts.end_latest(run_id, decide)
    if ended is not None:
        logger.warning("Run reconciled after its execution ended", extra={"run_id": run_id, "status": status})
        executions.delete_expiry(run_id, ended.attempt)
    return ended is not None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, bool]:
    return {"reconciled": reconcile(event.get("detail") or {})}
