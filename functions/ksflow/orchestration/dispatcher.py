"""The state machine's dispatch task: sign the run, POST it to the runner, mark it RUNNING.

The task token is stored before the POST so a runner that calls back before answering
still finds it; a 2xx moves the run to RUNNING only if it is still PENDING.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow import clock
from ksflow.config import settings
from ksflow.observability import follow_run, logger, metrics, tracer
from ksflow.orchestration import delivery, executions
from ksflow.workflows import run_store, runner_url, secrets, webhooks
from ksflow.workflows.models import WorkflowRun, run_response

# Time kept back from the Lambda's own timeout to fail the task cleanly.
SAFETY_MARGIN_SECONDS = 5.0


class DispatchFailed(Exception):
    """The runner did not accept the run; the message says why. Caught by the state machine."""


def dispatch_body(run: WorkflowRun) -> bytes:
    payload = {
        "type": "workflow_run.dispatch",
        "run": run_response(run).model_dump(mode="json"),
        "callback_url": f"{settings().public_api_url}/v1/workflow-runs/{run.id}/callback",
        "deadline": clock.iso(run.deadline),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def _seconds_left(run: WorkflowRun, context: LambdaContext) -> float:
    lambda_left = context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
    return min(lambda_left, (run.deadline - clock.now()).total_seconds())


def dispatch(run_id: str, task_token: str, context: LambdaContext) -> str:
    run = run_store.record_task_token(run_id, task_token)
    if run is None:
        # Ended (callback, cancel, expiry) or deleted before dispatch: end the wait now.
        executions.answer_task(task_token, {"status": "ENDED_BEFORE_DISPATCH"})
        return "skipped"
    follow_run(run)
    try:
        runner_url.check(run.runner_url, allow_loopback=settings().allow_loopback_runners, require_resolution=True)
    except runner_url.UnsafeRunnerUrl as error:
        raise DispatchFailed(f"Dispatch refused: {error}") from error
    secret = secrets.decrypt(run.secret_ciphertext, run.tenant_id, run.workflow_definition_id)
    body = dispatch_body(run)
    message_id = f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, 'ksflow-run:' + run.id).hex}"

    def headers() -> dict[str, str]:
        return {"Content-Type": "application/json", "User-Agent": "ksflow-dispatcher",
                "X-Correlation-Id": run.correlation_id or run.id,
                **webhooks.sign_headers(secret, message_id, clock.now(), body.decode())}

    outcome = delivery.deliver(run.runner_url, body, headers, seconds_left=lambda: _seconds_left(run, context))
    metrics.add_metric(name="DispatchAttempts", unit="Count", value=outcome.attempts)
    if not outcome.accepted:
        metrics.add_metric(name="DispatchFailed", unit="Count", value=1)
        logger.warning("Dispatch failed", extra={"attempts": outcome.attempts, "reason": outcome.error})
        raise DispatchFailed(outcome.error or "Runner did not accept the dispatch")
    run_store.mark_running(run.id)
    metrics.add_metric(name="DispatchAccepted", unit="Count", value=1)
    logger.info("Dispatch accepted", extra={"attempts": outcome.attempts})
    return "dispatched"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    logger.append_keys(run_id=event["run_id"])
    return {"result": dispatch(event["run_id"], event["task_token"], context)}
