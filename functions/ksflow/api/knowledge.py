"""/v1/folders, /v1/documents, /v1/document_versions and /v1/path-parts (uploads: `api/ingestion.py`)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import Field

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.pagination import Limit, Offset, Page
from ksflow.api.responses import documented
from ksflow.deletion import cascade
from ksflow.errors import Forbidden, NotFound
from ksflow.identity import store as identity
from ksflow.identity.models import Principal
from ksflow.knowledge import store, tree, views
from ksflow.knowledge.models import (
    CreateDocumentRequest,
    CreateFolderRequest,
    DocumentResponse,
    DocumentVersionResponse,
    FolderResponse,
    PartType,
    PathPart,
    PathPartResponse,
)
from ksflow.knowledge.tree import SortOrder

router = APIGatewayHttpRouter()

ParentId = Annotated[UUID | None, Query(description="Parent path part (defaults to the root folder)")]
MaxDepth = Annotated[int, Query(ge=1, le=50, description="Levels below the parent to list (1 = direct children)")]
Sort = Annotated[SortOrder, Query(description="NAME (and LOGICAL): by path; UPDATED_AT: newest first; "
                                              "CREATED_AT: oldest first")]
WithTags = Annotated[bool, Query(description="Accepted for compatibility; ksflow keeps no tags")]
FolderOrDocument = Annotated[FolderResponse | DocumentResponse, Field(discriminator="part_type")]


def readable(access: store.Access, part: PathPart | None, what: str) -> PathPart:
    """Parts the caller cannot read look exactly like parts that do not exist."""
    if part is None or not access.can_read(part):
        raise NotFound(f"{what} not found")
    return part


def writable(access: store.Access, part: PathPart, what: str) -> PathPart:
    if not access.can_write(part):
        raise Forbidden(f"You do not have write access to the {what}")
    return part


def writable_parent(principal: Principal, parent_id: UUID) -> tuple[store.Access, PathPart]:
    access = store.Access(principal)
    parent = readable(access, store.get_path_part(principal.tenant_id, str(parent_id)), "Parent folder")
    if parent.part_type != PartType.FOLDER:
        raise NotFound("Parent folder not found")
    return access, writable(access, parent, "parent folder")


def _object(principal: Principal, object_id: UUID, part_type: PartType, what: str) -> tuple[store.Access, PathPart]:
    access = store.Access(principal)
    return access, readable(access, store.get_by_object_id(principal.tenant_id, str(object_id), part_type), what)


def _parent(principal: Principal, parent_id: UUID | None, what: str) -> tuple[store.Access, PathPart]:
    access = store.Access(principal)
    if parent_id is None:
        tenant = identity.get_tenant(principal.tenant_id) or {}
        parent_id = UUID(str(tenant.get("root_path_part_id")))
    return access, readable(access, store.get_path_part(principal.tenant_id, str(parent_id)), what)


def _documents(access: store.Access, parts: list[PathPart]) -> list[DocumentResponse]:
    """Documents with their active versions, read in one batch."""
    versions = store.get_by_object_ids(access.principal.tenant_id, [str(p.active_version_id) for p in parts])
    return [views.document(p, versions[str(p.active_version_id)], can_write=access.can_write(p))
            for p in parts if str(p.active_version_id) in versions]


@router.post("/v1/folders", status_code=201, tags=["folders"], summary="Create a folder",
             responses=documented(201, 403, 404, 409))
def create_folder(request: CreateFolderRequest, principal: CurrentPrincipal) -> FolderResponse:
    _, parent = writable_parent(principal, request.parent_path_part_id)
    return views.folder(store.create_folder(principal, parent, request.name), can_write=True)


@router.get("/v1/folders", tags=["folders"], summary="List the folders in a folder",
            responses=documented(200, 404))
def list_folders(principal: CurrentPrincipal, parent_path_part_id: ParentId = None,
                 sort_order: Sort = SortOrder.NAME, with_tags: WithTags = False, limit: Limit = 20,
                 offset: Offset = 0) -> Page[FolderResponse]:
    access, parent = _parent(principal, parent_path_part_id, "Parent folder")
    page, total = tree.page(parent, 1, sort_order, {PartType.FOLDER}, limit, offset)
    return Page[FolderResponse](items=[views.folder(p, can_write=access.can_write(p)) for p in page], total=total,
                                limit=limit, offset=offset)


@router.get("/v1/folders/<folder_id>", tags=["folders"], summary="Get a folder", responses=documented(200, 404))
def get_folder(folder_id: UUID, principal: CurrentPrincipal) -> FolderResponse:
    access, part = _object(principal, folder_id, PartType.FOLDER, "Folder")
    return views.folder(part, can_write=access.can_write(part))


@router.get("/v1/folders/<folder_id>/contents", tags=["folders"], summary="List a folder's folders and documents",
            responses=documented(200, 404))
def list_folder_contents(folder_id: UUID, principal: CurrentPrincipal, max_depth: MaxDepth = 1,
                         sort_order: Sort = SortOrder.NAME, with_tags: WithTags = False, limit: Limit = 20,
                         offset: Offset = 0) -> Page[FolderOrDocument]:
    access, folder = _object(principal, folder_id, PartType.FOLDER, "Folder")
    page, total = tree.page(folder, max_depth, sort_order, {PartType.FOLDER, PartType.DOCUMENT}, limit, offset)
    documents = {d.path_part_id: d for d in _documents(access, [p for p in page if p.part_type == PartType.DOCUMENT])}
    items: list[FolderResponse | DocumentResponse] = [
        views.folder(p, can_write=access.can_write(p)) if p.part_type == PartType.FOLDER
        else documents[UUID(p.path_part_id)]
        for p in page if p.part_type == PartType.FOLDER or UUID(p.path_part_id) in documents
    ]
    return Page[FolderOrDocument](items=items, total=total, limit=limit, offset=offset)


@router.delete("/v1/folders/<folder_id>", status_code=204, tags=["folders"],
               summary="Delete a folder and everything in it", responses=documented(204, 403, 404, 409))
def delete_folder(folder_id: UUID, principal: CurrentPrincipal) -> None:
    access, folder = _object(principal, folder_id, PartType.FOLDER, "Folder")
    if folder.parent_id is None:
        raise Forbidden("The root folder cannot be deleted")
    cascade.delete(writable(access, folder, "folder"))


@router.post("/v1/documents", status_code=201, tags=["documents"], summary="Create a document (metadata only)",
             responses=documented(201, 403, 404, 409))
def create_document(request: CreateDocumentRequest, principal: CurrentPrincipal) -> DocumentResponse:
    _, parent = writable_parent(principal, request.parent_path_part_id)
    document, version = store.create_document(principal, parent, request.name, request.document_type,
                                              request.document_origin)
    return views.document(document, version, can_write=True)


@router.get("/v1/documents", tags=["documents"], summary="List the documents in a folder",
            responses=documented(200, 404))
def list_documents(principal: CurrentPrincipal, parent_path_part_id: ParentId = None,
                   sort_order: Sort = SortOrder.NAME, with_tags: WithTags = False, limit: Limit = 20,
                   offset: Offset = 0) -> Page[DocumentResponse]:
    access, parent = _parent(principal, parent_path_part_id, "Parent folder")
    page, total = tree.page(parent, 1, sort_order, {PartType.DOCUMENT}, limit, offset)
    return Page[DocumentResponse](items=_documents(access, page), total=total, limit=limit, offset=offset)


@router.get("/v1/documents/<document_id>", tags=["documents"], summary="Get a document",
            responses=documented(200, 404))
def get_document(document_id: UUID, principal: CurrentPrincipal) -> DocumentResponse:
    access, part = _object(principal, document_id, PartType.DOCUMENT, "Document")
    documents = _documents(access, [part])
    if not documents:
        raise NotFound("Document not found")
    return documents[0]


@router.delete("/v1/documents/<document_id>", status_code=204, tags=["documents"],
               summary="Delete a document, its versions, stored files and chunks",
               responses=documented(204, 403, 404, 409))
def delete_document(document_id: UUID, principal: CurrentPrincipal) -> None:
    access, document = _object(principal, document_id, PartType.DOCUMENT, "Document")
    cascade.delete(writable(access, document, "document"))


@router.get("/v1/document_versions/<version_id>", tags=["document-versions"], summary="Get a document version",
            responses=documented(200, 404))
def get_document_version(version_id: UUID, principal: CurrentPrincipal) -> DocumentVersionResponse:
    _, version = _object(principal, version_id, PartType.DOCUMENT_VERSION, "Document version")
    return views.document_version(version)


@router.get("/v1/path-parts", tags=["path-parts"], summary="List the path parts under a path part",
            responses=documented(200, 404))
def list_path_parts(principal: CurrentPrincipal, parent_path_id: ParentId = None, max_depth: MaxDepth = 1,
                    sort_order: Sort = SortOrder.NAME, limit: Limit = 20,
                    offset: Offset = 0) -> Page[PathPartResponse]:
    access, parent = _parent(principal, parent_path_id, "Path part")
    page, total = tree.page(parent, max_depth, sort_order, None, limit, offset)
    return Page[PathPartResponse](items=[views.path_part(p, can_read=True, can_write=access.can_write(p))
                                         for p in page], total=total, limit=limit, offset=offset)


@router.get("/v1/path-parts/<path_part_id>", tags=["path-parts"], summary="Get a path part",
            responses=documented(200, 404))
def get_path_part(path_part_id: UUID, principal: CurrentPrincipal) -> PathPartResponse:
    access = store.Access(principal)
    part = readable(access, store.get_path_part(principal.tenant_id, str(path_part_id)), "Path part")
    return views.path_part(part, can_read=True, can_write=access.can_write(part))
