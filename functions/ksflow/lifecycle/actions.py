"""Stop and retry a run: what its invoker, its definition's creator and OWNER/ADMIN may do to it."""

from __future__ import annotations

from datetime import timedelta

from ksflow import clock
from ksflow.errors import Conflict, Forbidden, Unavailable
from ksflow.identity.models import Principal
from ksflow.lifecycle import attempts, policy
from ksflow.observability import follow_run, logger, metrics
from ksflow.orchestration import executions
from ksflow.workflows import definitions, run_store, runs
from ksflow.workflows.models import EndedBy, RunStatus, WorkflowRun, execution_name_for

STOPPED = "Stopped by user"
CANCELLED = "Run was cancelled"


def _acting_on(principal: Principal, run_id: str) -> WorkflowRun:
    """The run, if the principal may act on it: 404 when it cannot see it, 403 when it may only look."""
    run = runs.get_visible(principal, run_id)
    if not (principal.is_admin or principal.user_id in (run.user_id, run.definition_owner_id)):
        raise Forbidden("Only the run's invoker, its definition's creator or an OWNER/ADMIN may do this")
    follow_run(run)
    return run


def stop(principal: Principal, run_id: str, *, cancel: bool = False) -> WorkflowRun:
    """FAILED now, whatever its attempt was doing; its execution ends and no dispatch starts after this.

    A cancel (`DELETE /v1/workflows/{id}`) is the same act with its own message.
    """
    run = _acting_on(principal, run_id)
    message, ended_by = (CANCELLED, EndedBy.CANCEL) if cancel else (STOPPED, EndedBy.STOP)
    if not run.status.terminal:
        ended = attempts.end_latest(run.id, lambda _: run_store.Ending(RunStatus.FAILED, message, ended_by), run)
        if ended is not None:
            attempts.release(ended, ended.task_token)
            return run_store.with_snapshot(ended)
        run = runs.get_visible(principal, run_id)
    raise Conflict(f"Workflow run already finished with status {run.status.value}")


def retry(principal: Principal, run_id: str) -> WorkflowRun:
    """A FAILED run's next attempt, with its frozen snapshot and time limit and the definition's current runner."""
    run = _acting_on(principal, run_id)
    if run.status != RunStatus.FAILED:
        raise Conflict(f"Only a FAILED workflow run can be retried; this one is {run.status.value}")
    if run.attempt >= policy.MAX_ATTEMPTS:
        raise Conflict(f"Workflow run has reached the maximum of {policy.MAX_ATTEMPTS} attempts")
    definition = definitions.get(run.tenant_id, run.workflow_definition_id)
    if definition is None or not definition.is_active:
        raise Conflict("Workflow definition is not active")
    if definition.runner_url is None or definition.secret_ciphertext is None:
        raise Conflict("Workflow definition has no runner configured")
    now, attempt = clock.now(), run.attempt + 1
    deadline = now + timedelta(seconds=run.max_run_duration_seconds)
    executions.move_expiry(run.id, attempt, deadline)
    retried = run_store.start_rerun(run, run_store.Rerun(
        attempt=attempt, execution=execution_name_for(run.id, attempt), started_at=now, deadline=deadline,
        runner_url=definition.runner_url, secret_ciphertext=definition.secret_ciphertext,
        retry_policy=definition.retry_policy,
        heartbeat_timeout_seconds=definition.heartbeat_timeout_seconds, by=principal.user_id))
    if retried is None:
        latest = runs.get_visible(principal, run_id)
        raise Conflict(f"Only a FAILED workflow run can be retried; this one is {latest.status.value} "
                       f"at attempt {latest.attempt}")
    try:
        executions.start(retried, clock.now())
    except Exception as error:
        logger.exception("Retry's execution did not start")
        not_started = run_store.Ending(RunStatus.FAILED, "The retry could not be started", EndedBy.DISPATCH)
        attempts.end_latest(run.id, lambda latest: not_started if latest.attempt == attempt else None)
        executions.delete_expiry(run.id, attempt)
        raise Unavailable("The retry could not be started; retry the request") from error
    metrics.add_metric(name="RunsRetried", unit="Count", value=1)
    return run_store.with_snapshot(retried)
