"""Path parts rendered as the SDK's response models."""

from __future__ import annotations

from ksflow.knowledge.models import (
    DocumentResponse,
    DocumentVersionResponse,
    FolderResponse,
    PathPart,
    PathPartResponse,
)
from ksflow.uploads import objects


def folder(part: PathPart, can_write: bool | None = None) -> FolderResponse:
    return FolderResponse.model_validate({
        "id": part.metadata_obj_id, "path_part_id": part.path_part_id, "name": part.name,
        "parent_path_part_id": part.parent_id, "materialized_path": part.materialized_path,
        "system_managed": part.system_managed, "tenant_id": part.tenant_id, "created_at": part.created_at,
        "updated_at": part.updated_at, "can_write": can_write,
    })


def document_version(part: PathPart) -> DocumentVersionResponse:
    return DocumentVersionResponse.model_validate({
        "id": part.metadata_obj_id, "path_part_id": part.path_part_id, "version": part.version or 0,
        "name": part.name, "parent_path_id": part.parent_id, "materialized_path": part.materialized_path,
        "system_managed": part.system_managed, "tenant_id": part.tenant_id,
        "uploader_tenant_user_id": part.created_by, "created_at": part.created_at, "updated_at": part.updated_at,
        "asset_s3_url": objects.download_url(part.object_key) if part.object_key else None,
    })


def document(part: PathPart, active_version: PathPart, can_write: bool | None = None) -> DocumentResponse:
    return DocumentResponse.model_validate({
        "id": part.metadata_obj_id, "path_part_id": part.path_part_id, "name": part.name,
        "parent_path_part_id": part.parent_id, "document_type": part.document_type,
        "document_origin": part.document_origin, "active_version_id": active_version.metadata_obj_id,
        "active_version": document_version(active_version), "materialized_path": part.materialized_path,
        "system_managed": part.system_managed, "tenant_id": part.tenant_id, "owner_tenant_user_id": part.created_by,
        "created_at": part.created_at, "updated_at": part.updated_at, "can_write": can_write,
    })


def path_part(part: PathPart, can_read: bool, can_write: bool) -> PathPartResponse:
    return PathPartResponse.model_validate({
        "path_part_id": part.path_part_id, "name": part.name, "part_type": part.part_type,
        "parent_path_id": part.parent_id, "metadata_obj_id": part.metadata_obj_id,
        "materialized_path": part.materialized_path, "system_managed": part.system_managed,
        "can_read": can_read, "can_write": can_write, "created_at": part.created_at, "updated_at": part.updated_at,
    })
