"""Failing a run: the state machine's Catch (deadline passed, orchestration failed) and dispatch giving up.

A runner's own failures never reach the Catch as errors: the dispatcher fails the run itself
(`fail`), because only it knows the cause, and a Lambda error would page the operator.
"""

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
    return f"Run orchestration failed: {error}: {error_message(cause)}".strip(), EndedBy.DISPATCH


def fail_run(run_id: str, failure: dict[str, Any]) -> bool:
    run = run_store.get(run_id)
    if run is None or run.status.terminal:
        return False
    follow_run(run)
    return fail(run_id, *describe(failure, run.max_run_duration_seconds))


def fail(run_id: str, message: str, ended_by: EndedBy) -> bool:
    """FAILED with `message` unless the run already ended; its expiry schedule is then not needed."""
    finished = run_store.finish(run_id, RunStatus.FAILED, message, ended_by)
    if finished is not None:
        executions.delete_expiry(run_id)
    return finished is not None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, bool]:
    return {"failed": fail_run(event["run_id"], event.get("failure") or {})}
