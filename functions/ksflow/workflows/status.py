"""`/v1/workflows/{workflow_id}`: the execution behind a run, in the SDK's Temporal-shaped terms."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from ksflow.workflows.models import EndedBy, RunStatus, WorkflowRun

RUN_WORKFLOW_TYPE = "workflow_run"
RUN_TASK_QUEUE = "ksflow-runs"


class ExecutionStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    TIMED_OUT = "TIMED_OUT"


class WorkflowStatusResponse(BaseModel):
    workflow_id: str
    execution_status: ExecutionStatus
    temporal_status: ExecutionStatus
    workflow_type: str
    task_queue: str
    start_time: datetime
    close_time: datetime | None
    run_id: str


class WorkflowCancelResponse(BaseModel):
    workflow_id: str
    message: str


_ENDINGS = {EndedBy.CANCEL: ExecutionStatus.CANCELED, EndedBy.STOP: ExecutionStatus.CANCELED,
            EndedBy.TIMEOUT: ExecutionStatus.TIMED_OUT, EndedBy.HEARTBEAT_TIMEOUT: ExecutionStatus.TIMED_OUT,
            EndedBy.EXPIRY: ExecutionStatus.TIMED_OUT, EndedBy.RECONCILE: ExecutionStatus.TERMINATED}


def execution_status(run: WorkflowRun) -> ExecutionStatus:
    """Derived from the run record, which every ending writes; no Step Functions call needed."""
    if not run.status.terminal:
        return ExecutionStatus.RUNNING
    if run.status == RunStatus.COMPLETED:
        return ExecutionStatus.COMPLETED
    return _ENDINGS.get(run.ended_by or EndedBy.DISPATCH, ExecutionStatus.FAILED)


def run_status(run: WorkflowRun) -> WorkflowStatusResponse:
    status = execution_status(run)
    return WorkflowStatusResponse(workflow_id=run.workflow_id, execution_status=status, temporal_status=status,
                                  workflow_type=RUN_WORKFLOW_TYPE, task_queue=RUN_TASK_QUEUE,
                                  start_time=run.started_at, close_time=run.completed_at, run_id=run.id)
