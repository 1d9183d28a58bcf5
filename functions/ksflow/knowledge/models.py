"""Path parts as stored, and the request/response shapes of the knowledge base endpoints."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter


class PartType(StrEnum):
    FOLDER = "FOLDER"
    DOCUMENT = "DOCUMENT"
    DOCUMENT_VERSION = "DOCUMENT_VERSION"


class DocumentType(StrEnum):
    PDF = "PDF"
    DOCX = "DOCX"
    PLAINTEXT = "PLAINTEXT"
    IMAGE = "IMAGE"
    XLSX = "XLSX"
    CSV = "CSV"
    PPTX = "PPTX"
    UNKNOWN = "UNKNOWN"


class DocumentOrigin(StrEnum):
    SOURCE = "SOURCE"
    GENERATED = "GENERATED"


class PathPart(BaseModel):
    """A node of the tenant's tree as stored; `ancestor_ids` lets grants on any ancestor apply."""

    tenant_id: str
    path_part_id: str
    part_type: PartType
    name: str
    parent_id: str | None
    ancestor_ids: list[str]
    materialized_path: str
    metadata_obj_id: str
    system_managed: bool
    created_at: datetime
    updated_at: datetime
    created_by: str
    document_type: DocumentType | None = None
    document_origin: DocumentOrigin | None = None
    active_version_id: str | None = None
    version: int | None = None
    # A version's stored file (written at upload), so responses can link it without reading the ingestion;
    # None for metadata-only documents and versions stored before the key was kept here.
    object_key: str | None = None

    @property
    def lineage(self) -> list[str]:
        """This part and all its ancestors, root first."""
        return [*self.ancestor_ids, self.path_part_id]


def _one_path_segment(name: str) -> str:
    """Names are segments of materialized paths (and file names), so each must read as exactly one."""
    if "/" in name:
        raise ValueError("A name cannot contain '/'")
    if name in (".", ".."):
        raise ValueError("A name cannot be '.' or '..'")
    control = next((c for c in name if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        raise ValueError(f"A name cannot contain control characters (found U+{ord(control):04X})")
    return name


Name = Annotated[str, Field(min_length=1, max_length=255, json_schema_extra={"pattern": r"^[^/\x00-\x1f\x7f-\x9f]+$"},
                            description="At most 255 characters; no '/', no control characters, not '.' or '..'"),
                 AfterValidator(_one_path_segment)]
NAME_RULES: TypeAdapter[str] = TypeAdapter(Name)


class CreateFolderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    parent_path_part_id: UUID


class CreateDocumentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    parent_path_part_id: UUID
    document_type: DocumentType = DocumentType.UNKNOWN
    document_origin: DocumentOrigin = DocumentOrigin.SOURCE


class FolderResponse(BaseModel):
    part_type: Literal["FOLDER"] = "FOLDER"
    id: UUID
    path_part_id: UUID
    name: str
    parent_path_part_id: UUID | None
    materialized_path: str
    system_managed: bool
    exclude_from_qdrant: bool = False
    tenant_id: UUID
    created_at: datetime
    updated_at: datetime
    tags: list[dict[str, Any]] = Field(default_factory=list)
    can_write: bool | None = None


class DocumentVersionResponse(BaseModel):
    id: UUID
    path_part_id: UUID
    version: int
    name: str
    parent_path_id: UUID | None
    materialized_path: str
    system_managed: bool
    tenant_id: UUID
    uploader_tenant_user_id: UUID
    created_at: datetime
    updated_at: datetime
    asset_s3_url: str | None = None
    fast_plaintext_url: str | None = None
    system_metadata: dict[str, Any] | None = None


class DocumentResponse(BaseModel):
    part_type: Literal["DOCUMENT"] = "DOCUMENT"
    id: UUID
    path_part_id: UUID
    name: str
    parent_path_part_id: UUID | None
    document_type: DocumentType
    document_origin: DocumentOrigin
    active_version_id: UUID
    active_version: DocumentVersionResponse
    materialized_path: str
    system_managed: bool
    exclude_from_qdrant: bool = False
    tenant_id: UUID
    owner_tenant_user_id: UUID
    created_at: datetime
    updated_at: datetime
    tags: list[dict[str, Any]] = Field(default_factory=list)
    can_write: bool | None = None


class PathPartResponse(BaseModel):
    path_part_id: UUID
    name: str
    part_type: PartType
    parent_path_id: UUID | None
    metadata_obj_id: UUID | None
    materialized_path: str
    system_managed: bool
    exclude_from_qdrant: bool = False
    tags: list[dict[str, Any]] = Field(default_factory=list)
    can_read: bool
    can_write: bool
    created_at: datetime
    updated_at: datetime
