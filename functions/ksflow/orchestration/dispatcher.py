"""The run state machine's dispatch steps: one signed POST to the runner per attempt, and the backoff.

Before every attempt the task token is stored on the run on condition that the run is still
PENDING, so a run that ended (callback, cancel, expiry) gets no further POST. The token is
stored before the POST so a runner that calls back before answering still finds it; a 2xx
moves the run to RUNNING only if it is still PENDING.

A runner's failure is an outcome of the attempt, never a Lambda error (that would page the
operator). Worth another POST with time left before the deadline: the task fails with the
named error `RunnerUnavailable`, and the state machine asks `plan_redispatch` for the wait and
the seconds then left, waits, and dispatches again, so Step Functions drives every wait.
Final (another 4xx, a refused URL) or out of time: the attempt fails with the cause here; the
task succeeds, or fails with `AttemptFailed` when the retry policy starts another attempt.
Every POST is a `dispatch_attempt` event with its answer and duration.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow import clock
from ksflow.config import settings
from ksflow.lifecycle import attempts, events
from ksflow.lifecycle.events import RunEventType
from ksflow.observability import follow_run, logger, metrics, tracer
from ksflow.orchestration import delivery, executions
from ksflow.workflows import run_store, secrets, webhooks
from ksflow.workflows.models import EndedBy, WorkflowRun, run_response

REDISPATCH_ERROR = "RunnerUnavailable"
MIN_BACKOFF_SECONDS = 1
MAX_BACKOFF_SECONDS = 300
# The last attempt starts at least this long before the deadline: the time it may take to connect.
ATTEMPT_SECONDS = delivery.CONNECT_TIMEOUT_SECONDS
# After the run ended there is nothing to wait for: the next dispatch step only closes the execution.
CLOSING_PLAN = {"wait_seconds": MIN_BACKOFF_SECONDS, "timeout_seconds": 60, "heartbeat_seconds": 59}


def dispatch_body(run: WorkflowRun) -> bytes:
    runs_url = f"{settings().public_api_url}/v1/workflow-runs/{run.id}"
    payload = {
        "type": "workflow_run.dispatch",
        "run": run_response(run_store.with_snapshot(run)).model_dump(mode="json"),
        "attempt": run.attempt,
        "callback_url": f"{runs_url}/callback?attempt={run.attempt}",
        "heartbeat_url": f"{runs_url}/heartbeat?attempt={run.attempt}",
        "deadline": clock.iso(run.deadline),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def message_id_of(run: WorkflowRun) -> str:
    """The dispatch's `webhook-id`: stable per (run, attempt), so a runner can drop repeated POSTs."""
    name = f"ksflow-run:{run.id}" + (f":{run.attempt}" if run.attempt > 1 else "")
    return f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, name).hex}"


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


def plan_redispatch(run_id: str, attempt: int) -> dict[str, Any]:
    """The next loop's state: the wait, and the seconds then left for the task's timers.

    Recomputed on every loop from the attempt's deadline: a Retry would reuse the first timeout.
    """
    run = run_store.get(run_id)
    if run is None or run.status.terminal or run.attempt != attempt:
        return {"run_id": run_id, "attempt": attempt, **CLOSING_PLAN}
    now = clock.now()
    return executions.attempt_state(run, now, wait_seconds=backoff_seconds(run, now) or MIN_BACKOFF_SECONDS)


def _give_up(run: WorkflowRun, task_token: str, reason: str) -> str:
    """The attempt fails with the cause; the execution ends, or goes on to the policy's next attempt."""
    metrics.add_metric(name="DispatchFailed", unit="Count", value=1)
    logger.warning("Dispatch failed", extra={"reason": reason})

    def decide(latest: WorkflowRun) -> run_store.Ending | None:
        return attempts.failure(latest, reason, EndedBy.DISPATCH) if latest.attempt == run.attempt else None

    ended = attempts.end_latest(run.id, decide)
    if ended is None:  # another writer ended the attempt meanwhile; this task still waits on its token
        executions.answer_task(task_token, {"status": "ENDED_DURING_DISPATCH"})
        return "failed"
    attempts.release(ended, task_token)
    return "failed" if ended.status.terminal else "retry_scheduled"


def _attempt_event(run: WorkflowRun, outcome: delivery.Outcome, started: float) -> events.RunEvent:
    return events.new(RunEventType.DISPATCH_ATTEMPT, run.attempt, {
        "status": outcome.status, "error": outcome.error or None,
        "duration_ms": round((time.monotonic() - started) * 1000)})


def dispatch(run_id: str, attempt: int, task_token: str) -> str:
    run = run_store.record_task_token(run_id, attempt, task_token)
    if run is None:
        # The attempt ended (callback, stop, expiry) or the run was deleted before this POST: end the wait now.
        executions.answer_task(task_token, {"status": "ENDED_BEFORE_DISPATCH"})
        return "skipped"
    follow_run(run)
    secret = secrets.decrypt(run.secret_ciphertext, run.tenant_id, run.workflow_definition_id)
    body = dispatch_body(run)
    headers = {"Content-Type": "application/json", "User-Agent": "ksflow-dispatcher",
               "X-Correlation-Id": run.correlation_id or run.id,
               **webhooks.sign_headers(secret, message_id_of(run), clock.now(), body.decode())}
    started = time.monotonic()
    outcome = delivery.deliver(run.runner_url, body, headers, allow_loopback=settings().allow_loopback_runners)
    metrics.add_metric(name="DispatchAttempts", unit="Count", value=1)
    if outcome.accepted:
        logger.info("Dispatch accepted")
    run_store.record_dispatch(run, _attempt_event(run, outcome, started), outcome.accepted)
    if outcome.accepted:
        if run.heartbeat_timeout_seconds:
            # The heartbeat timer ran during the POST: the runner gets a whole period from its 2xx on.
            executions.heartbeat(task_token)
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
    attempt = int(event.get("attempt") or 1)
    if event.get("step") == "plan_redispatch":
        return plan_redispatch(event["run_id"], attempt)
    return {"result": dispatch(event["run_id"], attempt, event["task_token"])}
