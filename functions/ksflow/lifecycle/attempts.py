"""Ending a run's current attempt, from whichever writer sees it end, and letting its execution go on.

A failure that the run's retry policy retries leaves the run PENDING at its next attempt; any
other ending is the run's outcome. The write is conditional on the run as read, so every
writer reads, decides and writes again when the run changed in between (a new task token, a
concurrent ending): exactly one ending wins per attempt.
"""

from __future__ import annotations

from collections.abc import Callable

from ksflow import clock
from ksflow.lifecycle import policy
from ksflow.orchestration import executions
from ksflow.workflows import run_store
from ksflow.workflows.models import EndedBy, RunStatus, WorkflowRun

# Each retry follows a concurrent change of the run; a few always suffice.
WRITE_ATTEMPTS = 4


def failure(run: WorkflowRun, error: str, ended_by: EndedBy, *, execution_waits: bool = True) -> run_store.Ending:
    """A failed attempt: retried if its kind is retryable and the policy has attempts left, else the outcome.

    A retry needs the execution to plan it: one that is not waiting on a task (`execution_waits`
    False: a callback before any dispatch) could not be told, so that failure is the outcome.
    """
    following = None
    if ended_by.retryable and execution_waits:
        following = policy.next_attempt(run.retry_policy, run.attempt, run.series_start,
                                        run.max_run_duration_seconds, clock.now())
    return run_store.Ending(RunStatus.FAILED, error, ended_by, following)


def end_latest(run_id: str, decide: Callable[[WorkflowRun], run_store.Ending | None],
               read: WorkflowRun | None = None) -> WorkflowRun | None:
    """Read the run (or take `read`, just read), let `decide` say how its attempt ends (None: leave it),
    write; again if it changed meanwhile."""
    for _ in range(WRITE_ATTEMPTS):
        run, read = read or run_store.get(run_id), None
        if run is None or run.status.terminal:
            return None
        ending = decide(run)
        if ending is None:
            return None
        ended = run_store.end_attempt(run, ending)
        if ended is not None:
            return ended
    return None


def release(ended: WorkflowRun, task_token: str | None) -> None:
    """Let the execution follow the ending: finish its wait, or hand a retry back to it to plan.

    An ended run's expiry schedule is not needed any more.
    """
    if not ended.status.terminal:
        if task_token:
            executions.fail_task(task_token, executions.ATTEMPT_FAILED)
        return
    if task_token:
        executions.answer_task(task_token, {"status": ended.status.value})
    else:
        executions.stop(ended.execution_name, ended.error or ended.status.value)
    executions.delete_expiry(ended.id, ended.attempt)


def time_limit_error(limit_seconds: int, why: str) -> str:
    """The one sentence every writer of a time-limit failure uses, with its own ending."""
    return f"Run exceeded its time limit of {limit_seconds} seconds (max_run_duration_seconds){why}"
