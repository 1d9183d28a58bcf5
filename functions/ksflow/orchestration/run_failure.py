"""The state machine's Catch: the deadline passed or dispatch gave up, so fail the run."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.observability import follow_run, logger, metrics, tracer
from ksflow.orchestration import executions
from ksflow.workflows import run_store
from ksflow.workflows.models import EndedBy, RunStatus


def error_message(cause: str) -> str:
    """The `errorMessage` of a Lambda task failure's Cause (a JSON document), else the Cause itself."""
    try:
        return str(json.loads(cause).get("errorMessage") or cause)
    except (ValueError, AttributeError):
        return cause


def describe(failure: dict[str, Any], max_run_duration_seconds: int) -> tuple[str, EndedBy]:
    error, cause = failure.get("Error", ""), failure.get("Cause", "") or ""
    if error == "States.Timeout":
        return (f"Run exceeded its time limit of {max_run_duration_seconds} seconds "
                "(max_run_duration_seconds) without a callback from the runner", EndedBy.TIMEOUT)
    if error == "DispatchFailed":
        return error_message(cause), EndedBy.DISPATCH
    return f"Run orchestration failed: {error}: {error_message(cause)}".strip(), EndedBy.DISPATCH


def fail_run(run_id: str, failure: dict[str, Any]) -> bool:
    run = run_store.get(run_id)
    if run is None or run.status.terminal:
        return False
    follow_run(run)
    message, ended_by = describe(failure, run.run_snapshot.max_run_duration_seconds)
    finished = run_store.finish(run_id, RunStatus.FAILED, message, ended_by)
    if finished is not None:
        logger.info("Run failed", extra={"reason": ended_by.value})
        executions.delete_expiry(run_id)
    return finished is not None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, bool]:
    return {"failed": fail_run(event["run_id"], event.get("failure") or {})}
