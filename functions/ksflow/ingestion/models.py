"""Ingestion records as stored, and the SDK's shapes of the ingestion endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel

WORKFLOW_PREFIX = "ingest-"
WORKFLOW_TYPE = "document_version_ingestion"
TASK_QUEUE = "ksflow-ingestion"


class IngestionStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def open(self) -> bool:
        return self in (IngestionStatus.PENDING, IngestionStatus.PROCESSING)


OPEN_STATUSES = (IngestionStatus.PENDING, IngestionStatus.PROCESSING)


class Activity(StrEnum):
    """What an ingestion did last (`last_activity`)."""

    UPLOADED = "upload_received"
    RERUN = "rerun_requested"
    EXTRACT = "extract_text"
    STORE = "store_chunks"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Ingestion(BaseModel):
    """The ingestion of one document version; `attempt` counts its (re)runs."""

    tenant_id: str
    document_version_id: str
    version_path_part_id: str
    document_id: str
    lineage: list[str]
    status: IngestionStatus
    attempt: int
    execution_name: str
    object_key: str
    file_name: str
    content_type: str | None = None
    size: int
    last_activity: str | None = None
    error: str | None = None
    chunks_processed: int | None = None
    # Where the chunks are (see `store`): records from before chunk partitions have neither.
    chunk_layout: int = 1
    chunk_extent: int = 0
    created_by: str
    created_at: datetime
    last_run_timestamp: datetime
    last_state_update_timestamp: datetime | None = None
    start_time: datetime | None = None
    close_time: datetime | None = None

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.document_version_id)


def workflow_id_for(document_version_id: str) -> str:
    """Stable across reruns: the id `/v1/workflows/...` takes."""
    return f"{WORKFLOW_PREFIX}{document_version_id}"


def execution_name(document_version_id: str, attempt: int) -> str:
    """Step Functions execution names are unique per state machine, so each (re)run gets its own."""
    return f"{WORKFLOW_PREFIX}{document_version_id}-{attempt}"


def version_id_of(workflow_id: str) -> str | None:
    """The document version behind an ingestion workflow id, or None if it names none."""
    if not workflow_id.startswith(WORKFLOW_PREFIX):
        return None
    candidate = workflow_id.removeprefix(WORKFLOW_PREFIX)
    try:
        return str(uuid.UUID(candidate)) if len(candidate) == 36 else None
    except ValueError:
        return None


class IngestDocumentResponse(BaseModel):
    workflow_id: str
    document_id: UUID
    document_version_id: UUID


class WorkflowSummaryResponse(BaseModel):
    workflow_id: str
    document_id: UUID
    document_version_id: UUID
    status: IngestionStatus
    last_activity: str | None
    error: str | None
    last_run_timestamp: datetime
    last_state_update_timestamp: datetime | None
    created_at: datetime


class WorkflowDetailResponse(WorkflowSummaryResponse):
    execution_status: str
    temporal_status: str
    start_time: datetime
    close_time: datetime | None
    workflow_type: str
    task_queue: str
    run_id: str
    chunks_processed: int | None


class WorkflowActionResponse(BaseModel):
    workflow_id: str
    action: str
    message: str


def summary(ingestion: Ingestion) -> WorkflowSummaryResponse:
    return WorkflowSummaryResponse.model_validate(
        {**ingestion.model_dump(include=set(WorkflowSummaryResponse.model_fields)),
         "workflow_id": ingestion.workflow_id})
