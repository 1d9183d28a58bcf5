"""Workflow definitions and runs: stored shapes and the SDK's request/response models."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ksflow.knowledge.models import PartType
from ksflow.lifecycle.policy import RetryPolicy
from ksflow.schedules.models import Schedule, ScheduleError, ScheduleOverlap
from ksflow.schedules.recurrence import Cadence


class RunStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED)


class EndedBy(StrEnum):
    """Who wrote a run's terminal status; decides whether a repeated callback is a no-op."""

    CALLBACK = "callback"
    DISPATCH = "dispatch"
    TIMEOUT = "timeout"
    EXPIRY = "expiry"
    CANCEL = "cancel"
    STOP = "stop"
    RECONCILE = "reconcile"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"

    @property
    def reason(self) -> str:
        """The `reason` of a `failed` run event (a cancel is a stop by another name)."""
        return "stopped" if self in (EndedBy.CANCEL, EndedBy.STOP) else self.value

    @property
    def retryable(self) -> bool:
        """Whether a retry policy may try again after an attempt ended this way."""
        return self in (EndedBy.CALLBACK, EndedBy.DISPATCH, EndedBy.TIMEOUT, EndedBy.HEARTBEAT_TIMEOUT)


class RunTrigger(StrEnum):
    MANUAL = "MANUAL"
    SCHEDULE = "SCHEDULE"


PathPartIds = Annotated[list[UUID], Field(min_length=1, max_length=20)]
# Checked against the zone database by the domain code (after authentication), not here.
TimezoneName = Annotated[str, Field(min_length=1, max_length=64)]


class RunnerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, Field(min_length=1, max_length=2083)]
    # Whether it can serve as a signing key is checked by the domain code, after authentication.
    webhook_secret: Annotated[SecretStr, Field(min_length=1, max_length=1024)]


class RunnerConfigResponse(BaseModel):
    url: str


class CreateWorkflowDefinitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=255)]
    description: Annotated[str, Field(max_length=4096)] | None = None
    runner_type: Literal["SELF_HOSTED"]
    runner_config: RunnerConfig | None = None
    max_run_duration_seconds: Annotated[int, Field(ge=60, le=86400)] = 300
    source_path_part_ids: PathPartIds
    instruction_path_part_ids: PathPartIds
    output_path_part_ids: PathPartIds
    template_path_part_id: UUID | None = None
    is_active: bool = True
    schedule_cadence: Cadence | None = None
    schedule_start_at: datetime | None = None
    schedule_timezone: TimezoneName | None = None
    schedule_overlap: ScheduleOverlap = ScheduleOverlap.SKIP
    retry_policy: RetryPolicy | None = None
    heartbeat_timeout_seconds: Annotated[int, Field(ge=10, le=3600)] | None = None


class WorkflowDefinition(BaseModel):
    """A definition as stored; the webhook secret only as KMS ciphertext."""

    tenant_id: str
    id: str
    name: str
    description: str | None
    runner_type: str
    runner_url: str | None
    secret_ciphertext: str | None
    max_run_duration_seconds: int
    source_path_part_ids: list[str]
    instruction_path_part_ids: list[str]
    output_path_part_ids: list[str]
    template_path_part_id: str | None
    is_active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    run_count: int = 0
    runs_created: int = 0
    schedule_cadence: Cadence | None = None
    schedule_start_at: datetime | None = None
    schedule_timezone: str | None = None
    schedule_overlap: ScheduleOverlap = ScheduleOverlap.SKIP
    # Written by scheduled occurrences, never by create or PUT.
    last_schedule_error: ScheduleError | None = None
    last_scheduled_run_id: str | None = None
    retry_policy: RetryPolicy | None = None
    heartbeat_timeout_seconds: int | None = None

    @property
    def schedule(self) -> Schedule | None:
        if self.schedule_cadence is None or self.schedule_start_at is None:
            return None
        return Schedule(cadence=self.schedule_cadence, start_at=self.schedule_start_at,
                        timezone=self.schedule_timezone or "UTC", overlap=self.schedule_overlap)


class WorkflowDefinitionResponse(BaseModel):
    id: UUID
    name: str
    description: str | None
    runner_type: Literal["SELF_HOSTED"]
    runner_config: RunnerConfigResponse | None
    max_run_duration_seconds: int
    source_path_part_ids: list[UUID]
    instruction_path_part_ids: list[UUID]
    output_path_part_ids: list[UUID]
    template_path_part_id: UUID | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
    schedule_cadence: Cadence | None
    schedule_start_at: datetime | None
    schedule_timezone: str | None
    schedule_overlap: ScheduleOverlap
    next_run_at: datetime | None
    last_schedule_error: ScheduleError | None
    retry_policy: RetryPolicy | None
    heartbeat_timeout_seconds: int | None


class PathSnapshot(BaseModel):
    path_part_id: UUID
    materialized_path: str
    part_type: PartType


class RunSnapshot(BaseModel):
    workflow_definition_id: UUID
    workflow_name: str
    runner_type: Literal["SELF_HOSTED"] = "SELF_HOSTED"
    user_id: UUID
    max_run_duration_seconds: int
    sources: list[PathSnapshot]
    instructions: list[PathSnapshot]
    outputs: list[PathSnapshot]
    template: PathSnapshot | None = None


class InvokeWorkflowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class AttemptRecord(BaseModel):
    """An earlier attempt of a run, as `attempts` shows it."""

    attempt: int
    status: RunStatus
    error: str | None = None
    started_at: datetime
    completed_at: datetime | None = None


class WorkflowRun(BaseModel):
    """A run as stored (partition `RUN#{id}`), addressable by id alone for callbacks.

    `started_at`, `deadline`, `status`, `error` and `completed_at` are the current attempt's;
    earlier attempts are in `attempts`.
    """

    tenant_id: str
    id: str
    workflow_definition_id: str
    definition_owner_id: str
    user_id: str
    status: RunStatus
    ended_by: EndedBy | None = None
    started_at: datetime
    deadline: datetime
    completed_at: datetime | None = None
    # None when read from an item whose snapshot is kept in S3 (`snapshot_s3_key`), until loaded.
    run_snapshot: RunSnapshot | None = None
    snapshot_s3_key: str | None = None
    snapshot_bytes: int | None = None
    error: str | None = None
    runner_url: str
    secret_ciphertext: str
    idempotency_key: str | None = None
    task_token: str | None = None
    correlation_id: str | None = None
    trigger: RunTrigger = RunTrigger.MANUAL
    scheduled_for: datetime | None = None
    created_at: datetime
    updated_at: datetime
    attempt: int = 1
    attempts: list[AttemptRecord] = Field(default_factory=list)
    # The attempt the current series of policy retries began with (1, or the attempt a retry by hand started).
    series_start: int = 1
    # The execution that runs the current attempt (None: the first, named after the workflow id).
    execution: str | None = None
    retry_policy: RetryPolicy | None = None
    heartbeat_timeout_seconds: int | None = None
    progress: int | None = None
    progress_message: str | None = None
    last_heartbeat_at: datetime | None = None
    # Progress events of the current attempt: a chatty runner's history is bounded.
    heartbeat_events: int = 0
    event_count: int = 0
    # Set on runs the run indexes hold (`runindex.layout`); None on runs written before them, until indexed.
    rix_pk: str | None = Field(default=None, exclude=True)

    @property
    def execution_name(self) -> str:
        return self.execution or self.workflow_id

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.id)

    @property
    def max_run_duration_seconds(self) -> int:
        """The time limit it was invoked with, without loading a snapshot kept outside the item."""
        return round((self.deadline - self.started_at).total_seconds())


RUN_WORKFLOW_PREFIX = "run-"


def workflow_id_for(run_id: str) -> str:
    """The run's execution name, which `/v1/workflows/{workflow_id}` takes."""
    return f"{RUN_WORKFLOW_PREFIX}{run_id}"


def run_id_of(workflow_id: str) -> str | None:
    """The run behind a workflow id, or None if it names no run."""
    return workflow_id.removeprefix(RUN_WORKFLOW_PREFIX) if workflow_id.startswith(RUN_WORKFLOW_PREFIX) else None


_RUN_ID_LENGTH = 36


def execution_name_for(run_id: str, attempt: int) -> str:
    """The execution a retry by hand starts: the workflow id and the attempt it begins with."""
    return f"{workflow_id_for(run_id)}-{attempt}"


def run_id_of_execution(name: str) -> str | None:
    """The run behind any of its executions' names (`run-{id}` or `run-{id}-{attempt}`)."""
    run_id = run_id_of(name)
    return run_id[:_RUN_ID_LENGTH] if run_id else None


class WorkflowRunResponse(BaseModel):
    id: UUID
    workflow_definition_id: UUID
    user_id: UUID
    runner_type: Literal["SELF_HOSTED"] = "SELF_HOSTED"
    status: RunStatus
    started_at: datetime
    completed_at: datetime | None
    run_snapshot: RunSnapshot
    error: str | None
    created_at: datetime
    updated_at: datetime
    workflow_id: str
    trigger: RunTrigger
    scheduled_for: datetime | None
    invoked_by: UUID
    attempt: int
    attempts: list[AttemptRecord]
    progress: int | None
    progress_message: str | None
    last_heartbeat_at: datetime | None


class CallbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["COMPLETED", "FAILED"]
    error: Annotated[str, Field(max_length=8192)] | None = None


class CallbackResponse(BaseModel):
    status: RunStatus


class HeartbeatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # A fraction is accepted and rounded: runners compute `done / total * 100`.
    progress: Annotated[float, Field(ge=0, le=100, strict=True)] | None = None  # no `true` as 1%
    message: Annotated[str, Field(max_length=1024)] | None = None


def run_response(run: WorkflowRun) -> WorkflowRunResponse:
    if run.run_snapshot is None:
        raise ValueError(f"Run {run.id}'s snapshot was not loaded")
    data: dict[str, Any] = run.model_dump(include=set(WorkflowRunResponse.model_fields) - {"workflow_id"})
    return WorkflowRunResponse.model_validate({**data, "workflow_id": run.workflow_id, "invoked_by": run.user_id})
