"""Execution status changes (FAILED, TIMED_OUT, ABORTED) fail runs whose execution died."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.observability import logger, metrics, tracer
from ksflow.orchestration import executions
from ksflow.workflows import run_store
from ksflow.workflows.models import EndedBy, RunStatus, run_id_of


def reconcile(detail: dict[str, Any]) -> bool:
    run_id, status = run_id_of(str(detail.get("name", ""))), str(detail.get("status", ""))
    if run_id is None:
        return False
    message = f"Run orchestration ended unexpectedly (execution {status})"
    finished = run_store.finish(run_id, RunStatus.FAILED, message, EndedBy.RECONCILE)
    if finished is not None:
        logger.warning("Run reconciled after its execution ended", extra={"run_id": run_id, "status": status})
        executions.delete_expiry(run_id)
    return finished is not None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, bool]:
    return {"reconciled": reconcile(event.get("detail") or {})}
