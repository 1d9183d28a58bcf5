"""/v1/documents/uploads: files of any size go straight to S3 through presigned URLs, then are completed.

The bytes never pass through the API (and its 4.4 MiB request limit): the client `PUT`s each part
to its URL and completes the upload with the parts' etags; the ingestion then starts as after
`POST /v1/documents/ingest`.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.responses import documented
from ksflow.ingestion.models import IngestDocumentResponse
from ksflow.uploads import service
from ksflow.uploads.models import CompleteUploadRequest, CreateUploadRequest, CreateUploadResponse

router = APIGatewayHttpRouter()


@router.post("/v1/documents/uploads", status_code=201, tags=["documents"],
             summary="Start a direct upload of a document (or a new version) of any size",
             description="Answers one presigned PUT URL per part (a single part up to 5 GiB). PUT each part's "
                         "bytes to its URL before `expires_at`, then complete the upload.",
             responses=documented(201, 403, 404, 409))
def create_upload(request: CreateUploadRequest, principal: CurrentPrincipal) -> CreateUploadResponse:
    return service.create(principal, request)


@router.post("/v1/documents/uploads/<upload_id>/complete", status_code=201, tags=["documents"],
             summary="Complete a direct upload and ingest the document",
             description="Bytes that differ from `size_bytes` are refused and removed. Completing again answers "
                         "the same; after `expires_at` an uncompleted upload is 410.",
             responses=documented(201, 403, 404, 409, 410))
def complete_upload(upload_id: UUID, principal: CurrentPrincipal,
                    request: Annotated[CompleteUploadRequest | None, Body()] = None) -> IngestDocumentResponse:
    return service.complete(principal, str(upload_id), request.parts if request else None)
