"""The dispatcher's retry schedule: how long to wait, and how much of the deadline the next attempt gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ksflow.local.lambda_runtime import LocalContext
from ksflow.orchestration import dispatcher
from ksflow.workflows.models import RunStatus, WorkflowRun

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _run(*, spent: float, left: float, status: RunStatus = RunStatus.PENDING, now: datetime = NOW) -> WorkflowRun:
    return WorkflowRun.model_construct(id="run-1", status=status, started_at=now - timedelta(seconds=spent),
                                       deadline=now + timedelta(seconds=left))


@pytest.mark.parametrize(("spent", "left", "wait"), [
    (0.2, 600, 1),        # at least a second
    (3.5, 600, 3),        # as long as the time spent so far: the waits double
    (40, 600, 40),
    (2000, 86000, 300),   # at most five minutes
    (100, 10, 5),         # cut short: the last attempt still starts 5 s before the deadline
])
def test_backoff_doubles_within_bounds_and_leaves_room_for_a_last_attempt(spent: float, left: float,
                                                                          wait: int) -> None:
    assert dispatcher.backoff_seconds(_run(spent=spent, left=left), NOW) == wait


@pytest.mark.parametrize("left", [5.9, 5, 1, 0, -30])
def test_no_backoff_when_no_attempt_fits_before_the_deadline(left: float) -> None:
    assert dispatcher.backoff_seconds(_run(spent=100, left=left), NOW) is None


def test_each_plan_recomputes_the_seconds_left_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(spent=10, left=100, now=datetime.now(UTC))
    monkeypatch.setattr(dispatcher.run_store, "get", lambda run_id: run)
    # The heartbeat timer is the deadline (none configured), the task's timeout a second later.
    assert dispatcher.plan_redispatch("run-1", 1) == {"run_id": "run-1", "attempt": 1, "wait_seconds": 10,
                                                      "timeout_seconds": 91, "heartbeat_seconds": 90}


def test_a_plan_keeps_the_heartbeat_timer_shorter_than_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """HeartbeatSecondsPath takes no null: the definition's heartbeat timeout, capped below the timeout."""
    run = _run(spent=10, left=100, now=datetime.now(UTC)).model_copy(update={"heartbeat_timeout_seconds": 30})
    monkeypatch.setattr(dispatcher.run_store, "get", lambda run_id: run)
    assert dispatcher.plan_redispatch("run-1", 1)["heartbeat_seconds"] == 30
    near_deadline = run.model_copy(update={"deadline": datetime.now(UTC) + timedelta(seconds=20)})
    monkeypatch.setattr(dispatcher.run_store, "get", lambda run_id: near_deadline)
    plan = dispatcher.plan_redispatch("run-1", 1)
    assert plan["heartbeat_seconds"] == plan["timeout_seconds"] - 1 < 30
    assert plan["wait_seconds"] + plan["heartbeat_seconds"] >= 19  # at the deadline, never earlier


def test_a_plan_for_an_attempt_that_is_no_longer_current_closes_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(spent=10, left=100, now=datetime.now(UTC)).model_copy(update={"attempt": 2})
    monkeypatch.setattr(dispatcher.run_store, "get", lambda run_id: run)
    assert dispatcher.plan_redispatch("run-1", 1)["timeout_seconds"] == 60


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED, None])
def test_a_run_that_ended_or_vanished_is_not_waited_for(monkeypatch: pytest.MonkeyPatch,
                                                        status: RunStatus | None) -> None:
    run = _run(spent=100, left=3600, status=status or RunStatus.PENDING)
    monkeypatch.setattr(dispatcher.run_store, "get", lambda run_id: run if status else None)
    plan = dispatcher.lambda_handler({"run_id": "run-1", "step": "plan_redispatch"},
                                     LocalContext(function_name="ksflow-Dispatcher", timeout_seconds=120))
    assert plan == {"run_id": "run-1", "attempt": 1, "wait_seconds": 1, "timeout_seconds": 60, "heartbeat_seconds": 59}
