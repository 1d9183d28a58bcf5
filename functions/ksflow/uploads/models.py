"""Request/response shapes of direct uploads, the stored upload record, and how a file is cut into parts.

S3 takes one `PUT` of up to 5 GiB; above that a multipart upload, whose parts are 5 MiB to 5 GiB
(the last may be smaller). Every upload is kept within 1,000 parts, so the largest is
1,000 x 5 GiB (about 4.9 TiB, just under S3's 5 TiB object limit).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ksflow.errors import ApiError
from ksflow.knowledge.models import Name

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB
MAX_PART_BYTES = 5 * 1024 * MIB
MAX_PARTS = 1000
MAX_UPLOAD_BYTES = MAX_PARTS * MAX_PART_BYTES
# How long the part URLs work and an upload may be completed.
UPLOAD_LIFETIME = timedelta(hours=1)


class Gone(ApiError):
    status_code = 410


def part_size_for(size_bytes: int) -> int:
    """One part when a single `PUT` takes the file; else whole MiB, as few as keep the upload within MAX_PARTS."""
    if size_bytes <= MAX_PART_BYTES:
        return size_bytes
    per_part = -(-size_bytes // MAX_PARTS)
    return max(MIN_PART_BYTES, -(-per_part // MIB) * MIB)


ContentType = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e][\x20-\x7e]*$",
                                   description="The file's media type (printable ASCII)")]


class CreateUploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = Field(description="The new document's name; for a new version, the file's name")
    path_part_id: UUID | None = Field(None, description="Parent folder (required unless `document_id` is given)")
    size_bytes: int = Field(ge=1, le=MAX_UPLOAD_BYTES, description="The file's exact size; an empty file has "
                                                                   "nothing to ingest")
    content_type: ContentType | None = None
    document_id: UUID | None = Field(None, description="Upload a new version of this document")

    @model_validator(mode="after")
    def _has_a_place(self) -> Self:
        if self.path_part_id is None and self.document_id is None:
            raise ValueError("Give path_part_id (a new document) or document_id (a new version)")
        return self


class PartUrl(BaseModel):
    part_number: int
    url: str


class CreateUploadResponse(BaseModel):
    upload_id: UUID
    expires_at: datetime
    part_size: int
    parts: list[PartUrl]


class CompletedPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=200, description="The `ETag` header S3 answered the part's PUT with")


class CompleteUploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parts: list[CompletedPart] | None = Field(None, max_length=MAX_PARTS,
                                              description="Every part's etag; optional for a single-part upload")


class Outcome(BaseModel):
    """How a completion ended, so asking again answers the same (201 with `body`, or an error's detail)."""

    status: int
    body: Any


class UploadRecord(BaseModel):
    """An upload as stored, with the ids it reserved: the file is written at the reserved version's key.

    `parent_id` is set for a new document (`document_id` is then the id reserved for it), unset for a
    new version of document `document_id`. `claim_token` marks the request completing it now.
    """

    tenant_id: str
    upload_id: str
    created_by: str
    created_at: datetime
    upload_expires_at: datetime
    name: str
    content_type: str | None = None
    size_bytes: int
    part_size: int
    part_count: int
    parent_id: str | None = None
    document_id: str
    document_version_id: str
    object_key: str
    multipart_upload_id: str
    claim_token: str | None = None
    claim_until: datetime | None = None
    outcome: Outcome | None = None
