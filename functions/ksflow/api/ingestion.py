"""/v1/documents/ingest, /v1/documents/{id}/ingest and /v1/workflows/document_versions: uploads and their ingestions.

Uploads travel inside the API request: API Gateway base64-encodes the multipart body into the
Lambda event, and a synchronous Lambda invocation carries at most 6 MB, so about 4.5 MiB of
body fits. `MAX_UPLOAD_BYTES` keeps a margin below that for the headers and the event's other
fields; the handler answers 413 above it.
"""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import File, Form, Path, Query, UploadFile
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.knowledge import readable, writable, writable_parent
from ksflow.api.pagination import Limit, Offset, Page
from ksflow.api.responses import documented
from ksflow.errors import Invalid, NotFound
from ksflow.ingestion import service
from ksflow.ingestion.models import (
    IngestDocumentResponse,
    Ingestion,
    WorkflowActionResponse,
    WorkflowDetailResponse,
    WorkflowSummaryResponse,
    summary,
)
from ksflow.knowledge import store
from ksflow.knowledge.models import NAME_RULES, Name, PartType

router = APIGatewayHttpRouter()

MAX_UPLOAD_BYTES = int(4.4 * 1024 * 1024)
UPLOAD_PATH = re.compile(r"^/v1/documents/(?:[^/]+/)?ingest$")

UploadedFile = Annotated[UploadFile, File(description=f"The file; the whole request body may be at most "
                                                      f"{MAX_UPLOAD_BYTES} bytes")]
DocumentName = Annotated[Name | None, Form(description="Document name (defaults to the file name)")]
WorkflowId = Annotated[str, Path(min_length=1, max_length=200)]
PageNumber = Annotated[int | None, Query(ge=1, le=1_000_000, description="1-based page (with page_size)")]
PageSize = Annotated[int | None, Query(ge=1, le=100, description="Items per page (with page)")]


def _file_name(file: UploadFile) -> str:
    """The last segment of the name the client gave the file; it follows the rules of every other name."""
    file_name = (file.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip(" ")
    if not file_name:
        return file_name
    try:
        return NAME_RULES.validate_python(file_name)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]
        raise Invalid(["body", "file"], f"File name: {problem['msg']}", problem["type"]) from None


def _upload(file: UploadFile, name: str | None) -> tuple[str, service.Upload]:
    file_name = _file_name(file)
    document_name = name or file_name
    if not document_name:
        raise Invalid(["body", "name"], "Give a name, or a file name in the upload", "missing")
    return document_name, service.Upload(file_name=file_name or document_name, content_type=file.content_type,
                                         data=file.content)


def _created(ingestion: Ingestion) -> IngestDocumentResponse:
    return IngestDocumentResponse.model_validate({"workflow_id": ingestion.workflow_id,
                                                  "document_id": ingestion.document_id,
                                                  "document_version_id": ingestion.document_version_id})


@router.post("/v1/documents/ingest", status_code=201, tags=["documents"], summary="Upload a document and ingest it",
             description="Creates the document and its first version, stores the file and starts its ingestion.",
             responses=documented(201, 403, 404, 409))
def ingest_document(file: UploadedFile, path_part_id: Annotated[UUID, Form(description="Parent folder")],
                    principal: CurrentPrincipal, name: DocumentName = None) -> IngestDocumentResponse:
    _, parent = writable_parent(principal, path_part_id)
    document_name, upload = _upload(file, name)
    return _created(service.ingest_new_document(principal, parent, document_name, upload))


@router.post("/v1/documents/<document_id>/ingest", status_code=201, tags=["documents"],
             summary="Upload a new version of a document and ingest it", responses=documented(201, 403, 404, 409))
def ingest_document_version(document_id: UUID, file: UploadedFile,
                            principal: CurrentPrincipal) -> IngestDocumentResponse:
    access = store.Access(principal)
    document = readable(access, store.get_by_object_id(principal.tenant_id, str(document_id), PartType.DOCUMENT),
                        "Document")
    writable(access, document, "document")
    active = store.get_by_object_id(principal.tenant_id, str(document.active_version_id), PartType.DOCUMENT_VERSION)
    if active is None:
        raise NotFound("Document not found")
    _, upload = _upload(file, None)
    return _created(service.ingest_new_version(principal, document, active, upload))


@router.get("/v1/workflows/document_versions", tags=["workflows"],
            summary="List document version ingestion workflows",
            description="Newest first. `page`/`page_size`, when given, take precedence over `limit`/`offset`.",
            responses=documented(200))
def list_ingestions(principal: CurrentPrincipal, limit: Limit = 20, offset: Offset = 0, page: PageNumber = None,
                    page_size: PageSize = None) -> Page[WorkflowSummaryResponse]:
    if page is not None or page_size is not None:
        limit = page_size or 20
        offset = ((page or 1) - 1) * limit
    ingestions, total = service.list_visible(principal, limit, offset)
    return Page[WorkflowSummaryResponse](items=[summary(i) for i in ingestions], total=total, limit=limit,
                                         offset=offset)


@router.get("/v1/workflows/document_versions/<workflow_id>", tags=["workflows"],
            summary="Get a document version ingestion workflow", responses=documented(200, 404))
def get_ingestion(workflow_id: WorkflowId, principal: CurrentPrincipal) -> WorkflowDetailResponse:
    return service.detail(service.get_visible(principal, workflow_id))


@router.post("/v1/workflows/document_versions/<workflow_id>", tags=["workflows"],
             summary="Rerun a document version ingestion from the stored file",
             responses=documented(200, 403, 404, 409))
def rerun_ingestion(workflow_id: WorkflowId, principal: CurrentPrincipal) -> WorkflowActionResponse:
    ingestion = service.rerun(principal, workflow_id)
    return WorkflowActionResponse(workflow_id=ingestion.workflow_id, action="rerun",
                                  message=f"Ingestion restarted from the stored file (attempt {ingestion.attempt})")
