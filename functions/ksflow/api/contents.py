"""/v1/document_versions/{id}/contents, /v1/chunks/{id} and /v1/document_versions?document_id=: how a
runner reads the text of its sources."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.pagination import Limit, Offset, Page
from ksflow.api.responses import documented
from ksflow.errors import NotFound
from ksflow.ingestion import contents
from ksflow.ingestion.contents import ChunkContentItem, ChunkResponse, ContentType
from ksflow.knowledge.models import DocumentVersionResponse

router = APIGatewayHttpRouter()

SectionId = Annotated[UUID | None, Query(description="Scope to a section's subtree (ksflow has no sections yet)")]
ContentTypeFilter = Annotated[ContentType | None, Query(description="CHUNK or SECTION; omitted: both (sections "
                                                                    "do not exist, so only chunks)")]
WithDocument = Annotated[bool, Query(description="Include the chunk's document and document version")]


@router.get("/v1/document_versions", tags=["document-versions"], summary="List a document's versions",
            description="Oldest (v0) first.", responses=documented(200, 404))
def list_document_versions(document_id: UUID, principal: CurrentPrincipal, limit: Limit = 20,
                           offset: Offset = 0) -> Page[DocumentVersionResponse]:
    items, total = contents.version_page(principal, str(document_id), offset, limit)
    return Page[DocumentVersionResponse](items=items, total=total, limit=limit, offset=offset)


@router.get("/v1/document_versions/<version_id>/contents", tags=["document-versions"],
            summary="List a document version's chunks in order",
            description="The chunks of the version's last completed ingestion; none before one completes.",
            responses=documented(200, 404))
def get_document_version_contents(version_id: UUID, principal: CurrentPrincipal, section_id: SectionId = None,
                                  content_type: ContentTypeFilter = None, limit: Limit = 20,
                                  offset: Offset = 0) -> Page[ChunkContentItem]:
    if section_id is not None:
        raise NotFound("Section not found")
    items, total = contents.chunk_page(principal, str(version_id), content_type, offset, limit)
    return Page[ChunkContentItem](items=items, total=total, limit=limit, offset=offset)


@router.get("/v1/chunks/<chunk_id>", tags=["chunks"], summary="Get a chunk",
            description="Takes the `metadata_obj_id` the contents listing gives. A rerun of the ingestion gives "
                        "its chunks new ids.", responses=documented(200, 404))
def get_chunk(chunk_id: UUID, principal: CurrentPrincipal, with_document: WithDocument = False) -> ChunkResponse:
    return contents.chunk(principal, str(chunk_id), with_document)
