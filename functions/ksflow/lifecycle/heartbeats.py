"""A runner's heartbeat: progress on the run, and proof of life for the attempt's heartbeat timer.

Cheap on purpose: one read, one transaction (progress, the message's claim, the secret check,
a progress event when it changed) and one `SendTaskHeartbeat`; no state transition, and
`updated_at` stays as it was.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from ksflow.errors import Conflict, Invalid, NotFound
from ksflow.orchestration import executions
from ksflow.workflows import run_store, runs
from ksflow.workflows.models import HeartbeatRequest, RunStatus, WorkflowRun

_WRITE_ATTEMPTS = 4


def _check_beating(run: WorkflowRun, attempt: int | None) -> None:
    """Only a dispatched attempt that is still current takes heartbeats: 409 tells the runner to stop."""
    if run.status.terminal:
        raise runs.CallbackConflict(run)
    runs.check_attempt(run, attempt)
    if run.task_token is None:
        raise Conflict(f"Attempt {run.attempt} of this workflow run has not been dispatched")


def heartbeat(run_id: str, headers: Mapping[str, str], body: str, api_key: str | None,
              attempt: int | None = None) -> RunStatus:
    run, signed = runs.runner_message(run_id, headers, body, api_key)
    try:
        request = HeartbeatRequest.model_validate_json(body or "{}")
    except ValidationError as error:
        raise Invalid.from_validation(error) from None
    progress = round(request.progress) if request.progress is not None else None
    for _ in range(_WRITE_ATTEMPTS):
        _check_beating(run, attempt)
        try:
            recorded = run_store.record_heartbeat(run, progress, request.message, signed)
        except run_store.MessageReplayed as replayed:
            if replayed.claimed_attempt == run.attempt:
                return run.status  # the same heartbeat again (a runner's retry): already recorded
            raise runs.claimed_elsewhere(replayed, run) from None
        except run_store.SecretRotated:
            signed = runs.reverify(run, headers, body)
            continue
        if recorded:
            executions.heartbeat(run.task_token or "")
            return run.status
        latest = run_store.get(run_id)
        if latest is None:
            raise NotFound("Workflow run not found")
        run = latest
    raise Conflict("The workflow run is changing; retry the heartbeat")
