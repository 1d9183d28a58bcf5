"""What ingestion made of a document version, in the SDK's shapes: its chunks in order, one chunk by
id, and a document's versions.

Chunks are read where their version is readable, exactly like the parent document (OWNER/ADMIN:
the whole tenant; a USER through grants); anything else looks like an id that does not exist.
A chunk has one id (the SDK's chunk id, path part id and content id alike), stable for its
ingestion attempt. A version lists the chunks of its last completed ingestion: until one has
completed it has none. Sections do not exist, so a listing never holds SECTION items.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from ksflow.errors import NotFound
from ksflow.identity.models import Principal
from ksflow.ingestion import store
from ksflow.knowledge import store as knowledge
from ksflow.knowledge import views
from ksflow.knowledge.models import DocumentOrigin, DocumentType, DocumentVersionResponse, PartType, PathPart


class ContentType(StrEnum):
    SECTION = "SECTION"
    CHUNK = "CHUNK"


class ChunkContentItem(BaseModel):
    part_type: Literal["CHUNK"] = "CHUNK"
    path_part_id: UUID
    name: str
    parent_path_id: UUID
    metadata_obj_id: UUID
    depth: int = 1
    content: str
    chunk_type: Literal["TEXT"] = "TEXT"
    chunk_metadata: dict[str, Any] = Field(default_factory=dict)
    materialized_path: str
    system_managed: bool = True
    created_at: datetime
    updated_at: datetime


class ChunkDocumentResponse(BaseModel):
    id: UUID
    name: str
    document_type: DocumentType
    document_origin: DocumentOrigin


class ChunkDocumentVersionResponse(BaseModel):
    id: UUID
    version: int
    name: str


class ChunkResponse(BaseModel):
    id: UUID
    path_part_id: UUID
    content_id: UUID
    content: str
    chunk_type: Literal["TEXT"] = "TEXT"
    chunk_metadata: dict[str, Any] = Field(default_factory=dict)
    num_tokens: int | None = None
    parent_path_id: UUID
    prev_sibling_path_id: UUID | None
    next_sibling_path_id: UUID | None
    materialized_path: str
    system_managed: bool = True
    tenant_id: UUID
    created_at: datetime
    updated_at: datetime
    document: ChunkDocumentResponse | None = None
    document_version: ChunkDocumentVersionResponse | None = None


def _readable(principal: Principal, object_id: str, part_type: PartType, what: str) -> PathPart:
    part = knowledge.get_by_object_id(principal.tenant_id, object_id, part_type)
    if part is None or not knowledge.Access(principal).can_read(part):
        raise NotFound(f"{what} not found")
    return part


def _chunk_path(version: PathPart, chunk: store.StoredChunk) -> str:
    return f"{version.materialized_path}/chunk-{chunk.index}"


def _content_item(version: PathPart, chunk: store.StoredChunk) -> ChunkContentItem:
    return ChunkContentItem.model_validate({
        "path_part_id": chunk.chunk_id, "name": f"chunk-{chunk.index}", "parent_path_id": version.path_part_id,
        "metadata_obj_id": chunk.chunk_id, "content": chunk.text, "materialized_path": _chunk_path(version, chunk),
        "created_at": chunk.created_at, "updated_at": chunk.created_at,
    })


def chunk_page(principal: Principal, version_id: str, content_type: ContentType | None, offset: int,
               limit: int) -> tuple[list[ChunkContentItem], int]:
    """One page of the version's chunks in order, and how many there are (a query per block of 100 chunks
    the page touches: one or two)."""
    version = _readable(principal, version_id, PartType.DOCUMENT_VERSION, "Document version")
    ingestion = store.get(principal.tenant_id, version_id)
    if ingestion is None or content_type == ContentType.SECTION:
        return [], 0
    total = ingestion.chunks_processed or 0
    chunks = store.chunk_range(principal.tenant_id, version_id, offset, min(offset + limit, total) - 1,
                               ingestion.chunk_layout)
    return [_content_item(version, chunk) for chunk in chunks], total


def chunk(principal: Principal, chunk_id: str, with_document: bool) -> ChunkResponse:
    """The chunk with this id, with its neighbours' ids (one query for the three, two across a block)."""
    located = store.locate_chunk(principal.tenant_id, chunk_id)
    if located is None:
        raise NotFound("Chunk not found")
    version_id, index, layout = located
    version = _readable(principal, version_id, PartType.DOCUMENT_VERSION, "Chunk")
    nearby = {c.index: c for c in store.chunk_range(principal.tenant_id, version_id, max(index - 1, 0), index + 1,
                                                    layout)}
    found = nearby.get(index)
    if found is None or found.chunk_id != chunk_id:
        raise NotFound("Chunk not found")
    previous, following = nearby.get(index - 1), nearby.get(index + 1)
    response = ChunkResponse.model_validate({
        "id": found.chunk_id, "path_part_id": found.chunk_id, "content_id": found.chunk_id, "content": found.text,
        "parent_path_id": version.path_part_id, "prev_sibling_path_id": previous.chunk_id if previous else None,
        "next_sibling_path_id": following.chunk_id if following else None,
        "materialized_path": _chunk_path(version, found), "tenant_id": principal.tenant_id,
        "created_at": found.created_at, "updated_at": found.created_at,
    })
    if not with_document:
        return response
    document = knowledge.get_path_part(principal.tenant_id, str(version.parent_id))
    if document is None:
        raise NotFound("Chunk not found")
    return response.model_copy(update={
        "document": ChunkDocumentResponse.model_validate({
            "id": document.metadata_obj_id, "name": document.name, "document_type": document.document_type,
            "document_origin": document.document_origin}),
        "document_version": ChunkDocumentVersionResponse.model_validate({
            "id": version.metadata_obj_id, "version": version.version or 0, "name": version.name}),
    })


def version_page(principal: Principal, document_id: str, offset: int,
                 limit: int) -> tuple[list[DocumentVersionResponse], int]:
    """A document's versions, oldest (v0) first."""
    document = _readable(principal, document_id, PartType.DOCUMENT, "Document")
    versions = sorted(knowledge.children(principal.tenant_id, [document.path_part_id]), key=lambda v: v.version or 0)
    return [views.document_version(v) for v in versions[offset:offset + limit]], len(versions)
