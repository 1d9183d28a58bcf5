"""The state machine's Catch: an attempt's timer fired, its orchestration failed, or a retry was handed back.

A runner's own failures never reach the Catch as errors: the dispatcher fails the attempt
itself (`dispatcher._give_up`), because only it knows the cause, and a Lambda error would page
the operator. The answer tells the state machine whether to go on with a next attempt (after
its wait) or to end.

Which timer fired is told by the run's own times, not by the error's name (moto reports a
missed heartbeat as `States.Timeout`): a timeout well before the attempt's deadline can only
be the heartbeat timer.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow import clock
from ksflow.lifecycle import attempts
from ksflow.observability import follow_run, logger, metrics, tracer
from ksflow.orchestration import executions
from ksflow.workflows import run_store
from ksflow.workflows.models import EndedBy, WorkflowRun

TIMER_ERRORS = ("States.Timeout", "States.HeartbeatTimeout")
# A heartbeat timer that fires closer than this to the deadline is taken for the deadline.
DEADLINE_MARGIN = timedelta(seconds=1.5)
END = {"retry": False}


def error_message(cause: str) -> str:
    """The `errorMessage` of a Lambda task failure's Cause (a JSON document), else the Cause itself."""
    try:
        return str(json.loads(cause).get("errorMessage") or cause)
    except (ValueError, AttributeError):
        return cause


def describe(failure: dict[str, Any], run: WorkflowRun) -> tuple[str, EndedBy]:
    error, cause = failure.get("Error", ""), failure.get("Cause", "") or ""
    if error in TIMER_ERRORS:
        if run.heartbeat_timeout_seconds and clock.now() < run.deadline - DEADLINE_MARGIN:
            return (f"The runner stopped sending heartbeats: none for {run.heartbeat_timeout_seconds} seconds "
                    "(heartbeat_timeout_seconds)", EndedBy.HEARTBEAT_TIMEOUT)
        return attempts.time_limit_error(run.max_run_duration_seconds, " without a callback from the runner"), \
            EndedBy.TIMEOUT
    return f"Run orchestration failed: {error}: {error_message(cause)}".strip(), EndedBy.DISPATCH


def handle(run_id: str, attempt: int, execution: str, failure: dict[str, Any]) -> dict[str, Any]:
    """End the execution's attempt as the failure says; the state for the next attempt, if there is one.

    Every policy retry passes through here, so the next attempt's expiry schedule is made here too.

    An attempt that another writer already failed with a retry (`AttemptFailed`, or a late
    callback racing the timer) is found at the next attempt, still this execution's: it goes on.
    """
    def decide(run: WorkflowRun) -> run_store.Ending | None:
        if run.attempt != attempt or run.execution_name != execution:
            return None
        return attempts.failure(run, *describe(failure, run))

    ended = attempts.end_latest(run_id, decide)
    if ended is not None and ended.status.terminal:
        follow_run(ended)
        executions.delete_expiry(run_id, ended.attempt)
        return END
    latest = ended or run_store.get(run_id)
    if latest is None or latest.status.terminal or latest.attempt <= attempt or latest.execution_name != execution:
        return END
    follow_run(latest)
    executions.move_expiry(run_id, latest.attempt, latest.deadline)
    logger.info("Next attempt planned", extra={"attempt": latest.attempt})
    metrics.add_metric(name="AttemptsRetried", unit="Count", value=1)
    return {"retry": True, **executions.attempt_state(latest, clock.now())}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event["run_id"], int(event.get("attempt") or 1), str(event.get("execution") or ""),
                  event.get("failure") or {})
