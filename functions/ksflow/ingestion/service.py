"""Uploading files for ingestion, and reading, rerunning and cancelling ingestions as a principal may.

An upload stores the file in S3 first, then writes the document (or new version) path parts
and the ingestion record in one transaction, then starts the execution. When the transaction
loses (a name conflict, or a parent that is gone or being deleted), the stored file is removed
again; once it wins, a delete of the parent finds the version and removes its file. A direct
upload (`StoredFile`) is already at its version's key: the same transaction and start follow,
and what happens to the file when the transaction loses is its caller's decision.
Ingestions are visible where their document version is readable (OWNER/ADMIN: all of the
tenant's); rerun and cancel need write access to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from ksflow import clock
from ksflow.errors import Conflict, Forbidden, NotFound
from ksflow.identity.models import Principal
from ksflow.ingestion import executions, extract, files, listing, store
from ksflow.ingestion.extract import FileFormat
from ksflow.ingestion.models import (
    TASK_QUEUE,
    WORKFLOW_TYPE,
    Activity,
    Ingestion,
    IngestionStatus,
    WorkflowDetailResponse,
    execution_name,
    summary,
    version_id_of,
)
from ksflow.knowledge import store as knowledge
from ksflow.knowledge.models import DocumentOrigin, DocumentType, PartType, PathPart
from ksflow.observability import logger
from ksflow.workflows.status import ExecutionStatus, WorkflowStatusResponse


@dataclass(frozen=True)
class Upload:
    file_name: str
    content_type: str | None
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class StoredFile:
    """A file a client put straight into the bucket, at the key of the version id reserved for it.

    `document_id` is the id reserved for a new document (unused for a new version).
    """

    file_name: str
    content_type: str | None
    size: int
    document_version_id: str
    document_id: str | None = None


_DOCUMENT_TYPES = {FileFormat.PLAIN_TEXT: DocumentType.PLAINTEXT, FileFormat.MARKDOWN: DocumentType.PLAINTEXT,
                   FileFormat.CSV: DocumentType.CSV, FileFormat.PDF: DocumentType.PDF,
                   FileFormat.DOCX: DocumentType.DOCX}
_OTHER_SUFFIXES = {".xlsx": DocumentType.XLSX, ".pptx": DocumentType.PPTX}


def document_type_of(upload: Upload | StoredFile) -> DocumentType:
    file_format = extract.detect(upload.file_name, upload.content_type)
    if file_format is not None:
        return _DOCUMENT_TYPES[file_format]
    if (upload.content_type or "").startswith("image/"):
        return DocumentType.IMAGE
    return _OTHER_SUFFIXES.get(PurePosixPath(upload.file_name).suffix.lower(), DocumentType.UNKNOWN)


def _with_file(version: PathPart, upload: Upload | StoredFile) -> PathPart:
    """The version as stored: with its file's key, under the version id a direct upload reserved."""
    version_id = upload.document_version_id if isinstance(upload, StoredFile) else version.metadata_obj_id
    return version.model_copy(update={"metadata_obj_id": version_id,
                                      "object_key": files.object_key(version.tenant_id, version_id, upload.file_name)})


def _new_ingestion(principal: Principal, document: PathPart, version: PathPart,
                   upload: Upload | StoredFile) -> Ingestion:
    now = clock.now()
    return Ingestion(
        tenant_id=principal.tenant_id, document_version_id=version.metadata_obj_id,
        version_path_part_id=version.path_part_id, document_id=document.metadata_obj_id, lineage=version.lineage,
        status=IngestionStatus.PENDING, attempt=1, execution_name=execution_name(version.metadata_obj_id, 1),
        object_key=str(version.object_key), file_name=upload.file_name, content_type=upload.content_type,
        size=upload.size,
        last_activity=Activity.UPLOADED.value, created_by=principal.user_id, created_at=now,
        last_run_timestamp=now, last_state_update_timestamp=now,
    )


def _start(ingestion: Ingestion) -> Ingestion:
    """Start the execution; if Step Functions refuses, the ingestion fails with the reason (rerun retries)."""
    try:
        executions.start(ingestion)
    except ClientError as error:
        logger.exception("Ingestion execution not started", extra={"workflow_id": ingestion.workflow_id})
        store.fail(ingestion.tenant_id, ingestion.document_version_id, ingestion.execution_name,
                   f"The ingestion could not be started: {error.response['Error']['Code']}")
        return store.get(ingestion.tenant_id, ingestion.document_version_id) or ingestion
    return ingestion


def _stored(ingestion: Ingestion, upload: Upload | StoredFile,
            write_parts: Callable[[list[dict[str, Any]]], object]) -> Ingestion:
    """Store the file (unless it is there), then the path parts with the ingestion record; then start the execution."""
    if isinstance(upload, StoredFile):
        write_parts(store.put_request(ingestion))
        return _start(ingestion)
    files.put(ingestion.object_key, upload.data, upload.content_type)
    try:
        write_parts(store.put_request(ingestion))
    except Exception:
        files.delete_all_versions([files.version_prefix(ingestion.tenant_id, ingestion.document_version_id)])
        raise
    return _start(ingestion)


def ingest_new_document(principal: Principal, parent: PathPart, name: str, upload: Upload | StoredFile,
                        also: Sequence[dict[str, Any]] = ()) -> Ingestion:
    """`also`: transaction items written with the document (a direct upload's completion)."""
    document, version = knowledge.new_document(principal, parent, name, document_type_of(upload),
                                               DocumentOrigin.SOURCE)
    version = _with_file(version, upload)
    document_id = upload.document_id if isinstance(upload, StoredFile) else None
    document = document.model_copy(update={"active_version_id": version.metadata_obj_id,
                                           "metadata_obj_id": document_id or document.metadata_obj_id})
    try:
        return _stored(_new_ingestion(principal, document, version, upload), upload,
                       lambda items: knowledge.store_document(parent, document, version, [*items, *also]))
    except Conflict as conflict:
        hint = name_taken(parent, name)
        if hint is None:
            raise
        raise hint from conflict


def name_taken(parent: PathPart, name: str) -> Conflict | None:
    """When a document holds the name, the conflict says how to upload a new version of it instead.

    The uploader may write to the folder, so it may read the document whose id this reveals.
    """
    existing = knowledge.child_named(parent, name)
    if existing is None or existing.part_type is not PartType.DOCUMENT:
        return None
    return Conflict(f"A document named {name!r} already exists in this folder; to upload a new version of it, "
                    f"use POST /v1/documents/{existing.metadata_obj_id}/ingest")


def ingest_new_version(principal: Principal, document: PathPart, active_version: PathPart,
                       upload: Upload | StoredFile, also: Sequence[dict[str, Any]] = ()) -> Ingestion:
    version = _with_file(knowledge.new_version(principal, document, active_version), upload)
    return _stored(_new_ingestion(principal, document, version, upload), upload,
                   lambda items: knowledge.store_version(document, version, document_type_of(upload), [*items, *also]))


def list_visible(principal: Principal, limit: int, offset: int) -> tuple[list[Ingestion], int]:
    """A page, newest first, and the total; a USER sees the ingestions of versions it can read (`listing`)."""
    access = knowledge.Access(principal)
    version_ids, total = listing.page(principal.tenant_id, limit, offset,
                                      None if principal.is_admin else access.can_read_lineage)
    return store.get_many(principal.tenant_id, version_ids), total


def get_visible(principal: Principal, workflow_id: str, *, for_write: bool = False) -> Ingestion:
    version_id = version_id_of(workflow_id)
    ingestion = store.get(principal.tenant_id, version_id) if version_id else None
    access = knowledge.Access(principal)
    if ingestion is None or not access.can_read_lineage(ingestion.lineage):
        raise NotFound("Workflow not found")
    if for_write and not access.can_write_lineage(ingestion.lineage):
        raise Forbidden("You do not have write access to this document")
    return ingestion


def rerun(principal: Principal, workflow_id: str) -> Ingestion:
    """Reprocess the stored file under a new execution; refused while the current one is open."""
    ingestion = get_visible(principal, workflow_id, for_write=True)
    if ingestion.status.open:
        raise Conflict(f"The ingestion is still {ingestion.status.value}; wait for it to end or cancel it")
    restarted = store.restart(ingestion, execution_name(ingestion.document_version_id, ingestion.attempt + 1))
    if restarted is None:
        raise Conflict("The ingestion was rerun or changed meanwhile")
    return _start(restarted)


def cancel(principal: Principal, workflow_id: str) -> Ingestion:
    ingestion = get_visible(principal, workflow_id, for_write=True)
    cancelled = store.cancel(ingestion.tenant_id, ingestion.document_version_id) if ingestion.status.open else None
    if cancelled is None:
        latest = store.get(ingestion.tenant_id, ingestion.document_version_id) or ingestion
        raise Conflict(f"The ingestion already finished with status {latest.status.value}")
    executions.stop(cancelled, "Cancelled by request")
    return cancelled


_EXECUTION_STATUSES = {"RUNNING": ExecutionStatus.RUNNING, "FAILED": ExecutionStatus.FAILED,
                       "TIMED_OUT": ExecutionStatus.TIMED_OUT, "PENDING_REDRIVE": ExecutionStatus.FAILED}
_RECORDED_STATUSES = {IngestionStatus.COMPLETED: ExecutionStatus.COMPLETED,
                      IngestionStatus.FAILED: ExecutionStatus.FAILED,
                      IngestionStatus.CANCELLED: ExecutionStatus.CANCELED}


@dataclass(frozen=True)
class Execution:
    status: ExecutionStatus
    start_time: datetime
    close_time: datetime | None


def execution(ingestion: Ingestion) -> Execution:
    """The current attempt's execution, live from Step Functions (one DescribeExecution).

    An execution that succeeded ended as its record says: it records unreadable files and
    crashes as failed ingestions and still succeeds.
    """
    recorded = _RECORDED_STATUSES.get(ingestion.status, ExecutionStatus.RUNNING)
    described = executions.describe(ingestion)
    if described is None:  # never started
        return Execution(recorded, ingestion.start_time or ingestion.last_run_timestamp, ingestion.close_time)
    raw = str(described["status"])
    if raw == "SUCCEEDED":
        live = recorded
    elif raw == "ABORTED":  # stopped: by a cancel, or by someone outside the API
        cancelled = ingestion.status == IngestionStatus.CANCELLED
        live = ExecutionStatus.CANCELED if cancelled else ExecutionStatus.TERMINATED
    else:
        live = _EXECUTION_STATUSES.get(raw, ExecutionStatus.RUNNING)
    return Execution(live, described["startDate"], described.get("stopDate"))


def detail(ingestion: Ingestion) -> WorkflowDetailResponse:
    live = execution(ingestion)
    return WorkflowDetailResponse.model_validate({
        **summary(ingestion).model_dump(), "execution_status": live.status, "temporal_status": live.status,
        "start_time": live.start_time, "close_time": live.close_time, "workflow_type": WORKFLOW_TYPE,
        "task_queue": TASK_QUEUE, "run_id": ingestion.execution_name, "chunks_processed": ingestion.chunks_processed,
    })


def status_response(ingestion: Ingestion) -> WorkflowStatusResponse:
    live = execution(ingestion)
    return WorkflowStatusResponse(workflow_id=ingestion.workflow_id, execution_status=live.status,
                                  temporal_status=live.status, workflow_type=WORKFLOW_TYPE, task_queue=TASK_QUEUE,
                                  start_time=live.start_time, close_time=live.close_time,
                                  run_id=ingestion.execution_name)


def discard(tenant_id: str, document_version_ids: list[str]) -> None:
    """For deleted versions: stop open ingestions, then remove every stored file version, chunk and record."""
    for version_id in document_version_ids:
        cancelled = store.cancel(tenant_id, version_id)
        if cancelled is not None:
            executions.stop(cancelled, "The document version was deleted")
    files.delete_all_versions([files.version_prefix(tenant_id, version_id) for version_id in document_version_ids])
    store.delete(tenant_id, document_version_ids)
