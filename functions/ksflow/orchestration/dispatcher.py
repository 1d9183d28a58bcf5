"""The run state machine's dispatch steps: one signed POST to the runner per attempt, and the backoff.

Before every attempt the task token is stored on the run on condition that the run is still
PENDING, so a run that ended (callback, cancel, expiry) gets no further POST. The token is
stored before the POST so a runner that calls back before answering still finds it; a 2xx
moves the run to RUNNING only if it is still PENDING.

A runner's failure is an outcome of the run, never a Lambda error (that would page the
operator). Worth another attempt with time left before the deadline: the task fails with the
named error `RunnerUnavailable`, and the state machine asks `plan_redispatch` for the wait and
the seconds then left, waits, and dispatches again, so Step Functions drives every wait.
Final (another 4xx, a refused URL) or out of time: the run is FAILED with the cause here, and
the task succeeds.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow import clock
from ksflow.config import settings
from ksflow.observability import follow_run, logger, metrics, tracer
from ksflow.orchestration import delivery, executions, run_failure
from ksflow.workflows import run_store, secrets, webhooks
from ksflow.workflows.models import EndedBy, WorkflowRun, run_response

REDISPATCH_ERROR = "RunnerUnavailable"
MIN_BACKOFF_SECONDS = 1
MAX_BACKOFF_SECONDS = 300
# The last attempt starts at least this long before the deadline: the time it may take to connect.
ATTEMPT_SECONDS = delivery.CONNECT_TIMEOUT_SECONDS
# After the run ended there is nothing to wait for: the next dispatch step only closes the execution.
CLOSING_PLAN = {"wait_seconds": MIN_BACKOFF_SECONDS, "timeout_seconds": 60}


def dispatch_body(run: WorkflowRun) -> bytes:
    payload = {
        "type": "workflow_run.dispatch",
        "run": run_response(run_store.with_snapshot(run)).model_dump(mode="json"),
        "callback_url": f"{settings().public_api_url}/v1/workflow-runs/{run.id}/callback",
        "deadline": clock.iso(run.deadline),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def backoff_seconds(run: WorkflowRun, now: datetime) -> int | None:
    """Seconds to wait before the next attempt, or None when no attempt fits before the deadline.

    The wait equals the time spent trying so far, so it doubles with no counter to keep (1 s at
    least, 5 min at most), and is cut short so that the last attempt still fits.
    """
    room = (run.deadline - now).total_seconds() - ATTEMPT_SECONDS
    if room < MIN_BACKOFF_SECONDS:
        return None
    spent = (now - run.started_at).total_seconds()
    return int(min(max(spent, MIN_BACKOFF_SECONDS), MAX_BACKOFF_SECONDS, room))


def plan_redispatch(run_id: str) -> dict[str, Any]:
    """The next loop's state: the wait, and the seconds then left for the task's TimeoutSecondsPath.

    Recomputed on every loop from the run's deadline: a Retry would reuse the first timeout.
    """
    run = run_store.get(run_id)
    if run is None or run.status.terminal:
        return {"run_id": run_id, **CLOSING_PLAN}
    now = clock.now()
    wait = backoff_seconds(run, now) or MIN_BACKOFF_SECONDS
    left = math.ceil((run.deadline - now).total_seconds()) - wait
    return {"run_id": run_id, "wait_seconds": wait, "timeout_seconds": max(1, left)}


def _give_up(run: WorkflowRun, task_token: str, reason: str) -> str:
    metrics.add_metric(name="DispatchFailed", unit="Count", value=1)
    logger.warning("Dispatch failed", extra={"reason": reason})
    run_failure.fail(run.id, reason, EndedBy.DISPATCH)
    executions.answer_task(task_token, {"status": "DISPATCH_FAILED"})
    return "failed"


def dispatch(run_id: str, task_token: str) -> str:
    run = run_store.record_task_token(run_id, task_token)
    if run is None:
        # Ended (callback, cancel, expiry) or deleted before this attempt: end the wait now.
        executions.answer_task(task_token, {"status": "ENDED_BEFORE_DISPATCH"})
        return "skipped"
    follow_run(run)
    secret = secrets.decrypt(run.secret_ciphertext, run.tenant_id, run.workflow_definition_id)
    body = dispatch_body(run)
    message_id = f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, 'ksflow-run:' + run.id).hex}"
    headers = {"Content-Type": "application/json", "User-Agent": "ksflow-dispatcher",
               "X-Correlation-Id": run.correlation_id or run.id,
               **webhooks.sign_headers(secret, message_id, clock.now(), body.decode())}
    outcome = delivery.deliver(run.runner_url, body, headers, allow_loopback=settings().allow_loopback_runners)
    metrics.add_metric(name="DispatchAttempts", unit="Count", value=1)
    if outcome.accepted:
        logger.info("Dispatch accepted")
        run_store.mark_running(run.id)
        metrics.add_metric(name="DispatchAccepted", unit="Count", value=1)
        return "dispatched"
    if not outcome.retryable:
        return _give_up(run, task_token, outcome.error)
    if backoff_seconds(run, clock.now()) is None:
        return _give_up(run, task_token,
                        f"{outcome.error} (gave up: no time left before the deadline for another attempt)")
    logger.info("Dispatch will be retried", extra={"reason": outcome.error})
    executions.fail_task(task_token, REDISPATCH_ERROR)
    return "retrying"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The dispatch task (it carries a task token), or the planning step after a runner failure."""
    logger.thread_safe_append_keys(run_id=event["run_id"])
    if event.get("step") == "plan_redispatch":
        return plan_redispatch(event["run_id"])
    return {"result": dispatch(event["run_id"], event["task_token"])}
