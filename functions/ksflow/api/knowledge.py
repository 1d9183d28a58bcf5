"""/v1/folders, /v1/documents and /v1/path-parts."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.api.auth import CurrentPrincipal
from ksflow.api.responses import documented
from ksflow.errors import Forbidden, NotFound
from ksflow.identity.models import Principal
from ksflow.knowledge import store, views
from ksflow.knowledge.models import (
    CreateDocumentRequest,
    CreateFolderRequest,
    DocumentResponse,
    FolderResponse,
    PartType,
    PathPart,
    PathPartResponse,
)

router = APIGatewayHttpRouter()


def _readable(access: store.Access, part: PathPart | None, what: str) -> PathPart:
    """Parts the caller cannot read look exactly like parts that do not exist."""
    if part is None or not access.can_read(part):
        raise NotFound(f"{what} not found")
    return part


def _writable_parent(principal: Principal, parent_id: UUID) -> tuple[store.Access, PathPart]:
    access = store.Access(principal)
    parent = _readable(access, store.get_path_part(principal.tenant_id, str(parent_id)), "Parent folder")
    if parent.part_type != PartType.FOLDER:
        raise NotFound("Parent folder not found")
    if not access.can_write(parent):
        raise Forbidden("You do not have write access to the parent folder")
    return access, parent


@router.post("/v1/folders", status_code=201, tags=["folders"], summary="Create a folder",
             responses=documented(201, 403, 404, 409))
def create_folder(request: CreateFolderRequest, principal: CurrentPrincipal) -> FolderResponse:
    _, parent = _writable_parent(principal, request.parent_path_part_id)
    return views.folder(store.create_folder(principal, parent, request.name), can_write=True)


@router.get("/v1/folders/<folder_id>", tags=["folders"], summary="Get a folder", responses=documented(200, 404))
def get_folder(folder_id: UUID, principal: CurrentPrincipal) -> FolderResponse:
    access = store.Access(principal)
    part = store.get_by_object_id(principal.tenant_id, str(folder_id), PartType.FOLDER)
    part = _readable(access, part, "Folder")
    return views.folder(part, can_write=access.can_write(part))


@router.post("/v1/documents", status_code=201, tags=["documents"], summary="Create a document (metadata only)",
             responses=documented(201, 403, 404, 409))
def create_document(request: CreateDocumentRequest, principal: CurrentPrincipal) -> DocumentResponse:
    _, parent = _writable_parent(principal, request.parent_path_part_id)
    document, version = store.create_document(principal, parent, request.name, request.document_type,
                                              request.document_origin)
    return views.document(document, version, can_write=True)


@router.get("/v1/documents/<document_id>", tags=["documents"], summary="Get a document",
            responses=documented(200, 404))
def get_document(document_id: UUID, principal: CurrentPrincipal) -> DocumentResponse:
    access = store.Access(principal)
    part = store.get_by_object_id(principal.tenant_id, str(document_id), PartType.DOCUMENT)
    part = _readable(access, part, "Document")
    version = store.get_by_object_id(principal.tenant_id, str(part.active_version_id), PartType.DOCUMENT_VERSION)
    if version is None:
        raise NotFound("Document not found")
    return views.document(part, version, can_write=access.can_write(part))


@router.get("/v1/path-parts/<path_part_id>", tags=["path-parts"], summary="Get a path part",
            responses=documented(200, 404))
def get_path_part(path_part_id: UUID, principal: CurrentPrincipal) -> PathPartResponse:
    access = store.Access(principal)
    part = _readable(access, store.get_path_part(principal.tenant_id, str(path_part_id)), "Path part")
    return views.path_part(part, can_read=True, can_write=access.can_write(part))
